package snapshot

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/progress"
)

// pgTOC is what a parallel restore's progress needs of a custom-format
// archive's table of contents: the dump ids of its TABLE DATA entries
// (the data section's work) and of its indexes and constraints (the
// post-data section's).
type pgTOC struct {
	data, post map[int]bool
	ids        []int // every entry, in the archive's order
}

// readPGTOC lists the table of contents of the archive at path with
// pg_restore --list, which reads only the archive's head.
func readPGTOC(ctx context.Context, pgRestore, path string) (pgTOC, error) {
	c := child{name: "pg_restore --list", path: pgRestore, args: []string{"--list", path}}
	out, err := c.output(ctx)
	if err != nil {
		return pgTOC{}, err
	}
	return parsePGTOC(out), nil
}

// parsePGTOC reads pg_restore --list output: after comment lines (";"),
// one entry a line, "ID; TABLEOID OID DESC SCHEMA NAME OWNER", where DESC
// may hold spaces ("TABLE DATA", "FK CONSTRAINT").
func parsePGTOC(list string) pgTOC {
	toc := pgTOC{data: map[int]bool{}, post: map[int]bool{}}
	for line := range strings.Lines(list) {
		id, rest, ok := strings.Cut(strings.TrimSpace(line), "; ")
		if !ok || strings.HasPrefix(id, ";") {
			continue
		}
		n, err := strconv.Atoi(id)
		f := strings.SplitN(rest, " ", 3) // table oid, oid, the rest
		if err != nil || len(f) < 3 {
			continue
		}
		toc.ids = append(toc.ids, n)
		switch desc := f[2]; {
		case strings.HasPrefix(desc, "TABLE DATA "):
			toc.data[n] = true
		case strings.HasPrefix(desc, "INDEX ") && !strings.HasPrefix(desc, "INDEX ATTACH "),
			strings.HasPrefix(desc, "CONSTRAINT "), strings.HasPrefix(desc, "FK CONSTRAINT "):
			toc.post[n] = true
		}
	}
	return toc
}

// pgRestoreChatter are the starts of pg_restore --verbose's progress
// messages (after "pg_restore: "): counted, and kept out of the output
// quoted in an error, which keeps the error and its context ("while
// PROCESSING TOC:", "from TOC entry ...", "error: ...", "Command was:").
var pgRestoreChatter = []string{
	"connecting to database", "processing ", "creating ", "launching item", "finished item",
	"skipping item", "entering main parallel loop", "finished main parallel loop", "implied data-only restore",
	"executing ", "setting owner", "reducing dependencies", "transferring dependency", "restoring ",
	"disabling triggers", "enabling triggers", "dropping ",
}

// pgRestoreRun follows one pg_restore --verbose --jobs run over the data
// and post-data sections together, in which workers build one table's
// indexes while others still load tables. It counts the tables, then the
// indexes and constraints, that the workers report finished ("finished
// item ID DESC TAG"), once each, and notes when the last table finished:
// the end of the data step. Its lines method is a child.lines function;
// it drops pg_restore's progress chatter and keeps the rest (errors and
// their context) for the error message.
type pgRestoreRun struct {
	mu        sync.Mutex // finished is called by the pg_restores beside the run too
	m         *progress.Meter
	toc       pgTOC
	post      progress.Phase // started when the last table has finished
	now       func() time.Time
	data, idx map[int]bool // finished
	dataEnd   time.Time    // when the last table finished (the post phase began); zero until then
	// onData, when set, hears of each TABLE DATA item finished, once,
	// with the run's lock held: it must not block.
	onData func(id int)
}

// newPGRestoreRun starts counting the tables of toc in m under phase data,
// and moves to phase post when the last one finished.
func newPGRestoreRun(m *progress.Meter, toc pgTOC, data, post progress.Phase) *pgRestoreRun {
	r := &pgRestoreRun{m: m, toc: toc, post: post, now: time.Now, data: map[int]bool{}, idx: map[int]bool{}}
	data.Total = int64(len(toc.data))
	r.post.Total = int64(len(toc.post))
	m.Start(data)
	if len(toc.data) == 0 {
		r.dataFinished()
	}
	return r
}

// dataFinished ends the data step: the post-data phase starts, counting
// the indexes and constraints already built beside the loads.
func (r *pgRestoreRun) dataFinished() {
	r.dataEnd = r.now()
	r.m.Start(r.post)
	r.m.Add(int64(len(r.idx)))
}

func (r *pgRestoreRun) lines(line []byte) bool {
	msg, ok := bytes.CutPrefix(line, []byte("pg_restore: "))
	if !ok {
		return true
	}
	if rest, ok := bytes.CutPrefix(msg, []byte("finished item ")); ok {
		id, _, _ := bytes.Cut(rest, []byte(" "))
		if n, err := strconv.Atoi(string(id)); err == nil {
			r.finished(n)
		}
	}
	return pgRestoreQuiet(line)
}

// finished counts item n once.
func (r *pgRestoreRun) finished(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.toc.data[n] && !r.data[n]:
		r.data[n] = true
		if r.onData != nil {
			r.onData(n)
		}
		if r.dataEnd.IsZero() {
			r.m.Add(1)
			if len(r.data) == len(r.toc.data) {
				r.dataFinished()
			}
		}
	case r.toc.post[n] && !r.idx[n]:
		r.idx[n] = true
		if !r.dataEnd.IsZero() {
			r.m.Add(1)
		}
	}
}

// pgRestoreQuiet is a child.lines function that drops pg_restore
// --verbose's progress chatter and keeps the rest.
func pgRestoreQuiet(line []byte) bool {
	msg, ok := bytes.CutPrefix(line, []byte("pg_restore: "))
	if !ok {
		return true
	}
	for _, c := range pgRestoreChatter {
		if bytes.HasPrefix(msg, []byte(c)) {
			return false
		}
	}
	return true
}
