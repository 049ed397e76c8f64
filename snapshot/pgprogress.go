package snapshot

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/internal/progress"
)

// pgTOC is what a parallel restore's progress needs of a custom-format
// archive's table of contents: the dump ids of its TABLE DATA entries
// (the data section's work) and of its indexes and constraints (the
// post-data section's).
type pgTOC struct {
	data, post map[int]bool
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

// pgRestoreLines returns a child.lines function for pg_restore --verbose
// --jobs that counts in m, once each, the items of ids that a worker
// reports finished ("finished item ID DESC TAG"), and drops the other
// progress messages.
func pgRestoreLines(m *progress.Meter, ids map[int]bool) func([]byte) bool {
	done := map[int]bool{}
	return func(line []byte) bool {
		msg, ok := bytes.CutPrefix(line, []byte("pg_restore: "))
		if !ok {
			return true
		}
		if rest, ok := bytes.CutPrefix(msg, []byte("finished item ")); ok {
			id, _, _ := bytes.Cut(rest, []byte(" "))
			if n, err := strconv.Atoi(string(id)); err == nil && ids[n] && !done[n] {
				done[n] = true
				m.Add(1)
			}
		}
		for _, c := range pgRestoreChatter {
			if bytes.HasPrefix(msg, []byte(c)) {
				return false
			}
		}
		return true
	}
}
