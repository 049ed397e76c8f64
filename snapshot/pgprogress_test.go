package snapshot

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/progress"
)

// tocListing is pg_restore --list of a small database (PostgreSQL 15).
const tocListing = `;
; Archive created at 2026-12-02 18:01:33 UTC
;     dbname: progexp
;     TOC Entries: 17
;     Format: CUSTOM
;
; Selected TOC Entries:
;
214; 1259 33912 TABLE public a postgres
215; 1259 33920 TABLE public b postgres
216; 1259 33934 SEQUENCE public s postgres
217; 1259 33935 VIEW public vv postgres
3356; 0 33912 TABLE DATA public a postgres
3357; 0 33920 TABLE DATA public b postgres
3365; 0 0 SEQUENCE SET public s postgres
3206; 2606 33918 CONSTRAINT public a a_pkey postgres
3210; 2606 33926 CONSTRAINT public b b_pkey postgres
3207; 1259 33919 INDEX public a_v postgres
3208; 1259 33933 INDEX public b_a postgres
3301; 0 0 INDEX ATTACH public b_a_part postgres
3211; 1259 33932 INDEX public b_w postgres
3212; 2606 33927 FK CONSTRAINT public b b_a_id_fkey postgres
;3213; 1259 33940 INDEX public commented_out postgres
`

func TestParsePGTOC(t *testing.T) {
	toc := parsePGTOC(tocListing)
	ids := func(m map[int]bool) []int {
		var out []int
		for _, id := range []int{3356, 3357, 3206, 3210, 3207, 3208, 3211, 3212, 3301, 3365, 3213} {
			if m[id] {
				out = append(out, id)
			}
		}
		return out
	}
	if got := ids(toc.data); len(got) != 2 || len(toc.data) != 2 {
		t.Errorf("TABLE DATA entries %v, want 3356 and 3357", got)
	}
	if got := ids(toc.post); len(got) != 6 || len(toc.post) != 6 {
		t.Errorf("index and constraint entries %v, want 3206, 3210, 3207, 3208, 3211, 3212", got)
	}
}

// TestPGRestoreLines: the workers' "finished item" messages count the
// items of the section once each; the verbose chatter is dropped, and
// an error with its context is kept.
func TestPGRestoreLines(t *testing.T) {
	m := progress.NewMeter()
	toc := pgTOC{data: map[int]bool{3356: true, 3357: true}, post: map[int]bool{3206: true}}
	lines := newPGRestoreRun(m, toc, progress.Phase{Name: "pg_restore data", Unit: "tables"}, progress.Phase{Name: "pg_restore post-data"}).lines
	var kept []string
	for line := range strings.Lines(`pg_restore: connecting to database for restore
pg_restore: implied data-only restore
pg_restore: processing item 214 TABLE a
pg_restore: entering main parallel loop
pg_restore: launching item 3357 TABLE DATA b
pg_restore: launching item 3356 TABLE DATA a
pg_restore: processing data for table "public.a"
pg_restore: finished item 3356 TABLE DATA a
pg_restore: skipping item 3206 CONSTRAINT a a_pkey
pg_restore: launching item 3365 SEQUENCE SET s
pg_restore: executing SEQUENCE SET s
pg_restore: finished item 3365 SEQUENCE SET s
pg_restore: finished item 3356 TABLE DATA a
pg_restore: processing data for table "public.b"
pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 3357; 0 33920 TABLE DATA b postgres
pg_restore: error: COPY failed for table "b": ERROR:  duplicate key value violates unique constraint "b_pkey"
DETAIL:  Key (id)=(1) already exists.
pg_restore: error: a worker process died unexpectedly
`) {
		if lines([]byte(strings.TrimSuffix(line, "\n"))) {
			kept = append(kept, line)
		}
	}
	if done := m.Phases()[0].Done; done != 1 {
		t.Errorf("%d tables counted, want 1 (3356 once; 3365 is not a table)", done)
	}
	want := `pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 3357; 0 33920 TABLE DATA b postgres
pg_restore: error: COPY failed for table "b": ERROR:  duplicate key value violates unique constraint "b_pkey"
DETAIL:  Key (id)=(1) already exists.
pg_restore: error: a worker process died unexpectedly
`
	if got := strings.Join(kept, ""); got != want {
		t.Errorf("kept:\n%s\nwant:\n%s", got, want)
	}
}

// TestLineWriter: lines split across writes are seen whole, kept lines
// reach the tail, and an unfinished last line is handed on by flush.
func TestLineWriter(t *testing.T) {
	tail := &tailBuffer{}
	var seen []string
	w := &lineWriter{tail: tail, line: func(b []byte) bool {
		seen = append(seen, string(b))
		return !strings.HasPrefix(string(b), "drop")
	}}
	for _, p := range []string{"keep one\ndro", "p this\r\n", "", "keep two\nkeep", " three"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	w.flush()
	if got := strings.Join(seen, "|"); got != "keep one|drop this|keep two|keep three" {
		t.Errorf("lines seen %q", got)
	}
	if got := tail.String(); got != "keep one\nkeep two\nkeep three" {
		t.Errorf("tail %q", got)
	}
	w.Write([]byte(strings.Repeat("x", maxLine+1)))
	w.flush()
	if len(seen) != 4 || !strings.HasSuffix(tail.String(), strings.Repeat("x", tailKeep)) {
		t.Errorf("a line longer than maxLine: scanned (%d lines seen) or not kept", len(seen))
	}
}

// TestPGRestoreRunPhases: in one run over the data and post-data
// sections, indexes finished while tables still load are counted when
// the post-data phase starts, which is when the last table finished.
func TestPGRestoreRunPhases(t *testing.T) {
	m := progress.NewMeter()
	toc := pgTOC{data: map[int]bool{1: true, 2: true}, post: map[int]bool{10: true, 11: true, 12: true}}
	r := newPGRestoreRun(m, toc,
		progress.Phase{Name: "pg_restore data", Unit: "tables"},
		progress.Phase{Name: "pg_restore post-data", Unit: "indexes and constraints"})
	clock := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	for i, id := range []int{10, 1, 11, 1, 2, 12, 99} {
		clock = clock.Add(time.Second)
		r.lines([]byte(fmt.Sprintf("pg_restore: finished item %d X", id)))
		if id == 2 && !r.dataEnd.Equal(clock) {
			t.Fatalf("after line %d the data step did not end", i)
		}
	}
	want := []progress.Count{
		{Phase: progress.Phase{Name: "pg_restore data", Unit: "tables", Total: 2}, Done: 2},
		{Phase: progress.Phase{Name: "pg_restore post-data", Unit: "indexes and constraints", Total: 3}, Done: 3},
	}
	if got := m.Phases(); !slices.Equal(got, want) {
		t.Fatalf("phases %+v, want %+v", got, want)
	}
	if want := time.Date(2026, 12, 3, 2, 0, 5, 0, time.UTC); !r.dataEnd.Equal(want) {
		t.Errorf("data step ended %v, want %v (when table 2 finished)", r.dataEnd, want)
	}
}
