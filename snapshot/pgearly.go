package snapshot

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgEarlyLoads loads the tables of a custom-format archive while the rest
// of it is still being written to the spool file: restoring from the
// spool otherwise waits for the whole download (2-4 s a GB here) before
// the first row reaches the database. It starts only when the archive's
// head (its header and table of contents, which hold every statement
// pg_restore runs) matches the digest the signed manifest recorded at
// backup time (Parallel.Head): no SQL from the payload runs before it is
// proven to be the backup's own. The data blocks loaded before the whole
// payload is checked are rows for COPY, each 64 KiB authenticated by age;
// if the whole check then fails, the Load fails and the restore drops
// what was loaded (pgLoader.Abort).
//
// The archive's parser (pgArchiveTee) tells it when the table of contents
// is in the file and when each data block is in the file whole. Once the
// schema is restored (pg_restore --section=pre-data reads only the
// archive's head, so it runs as soon as that is written), workers take
// the largest table whose block is complete, fill in its data offset in
// the spool's table of contents, and restore it with a pg_restore of its
// own limited to that entry (--use-list). When the spool is complete,
// claims stop: the tables not taken yet load with the indexes and
// constraints in the one parallel pg_restore that follows
// (loadParallel), which skips the entries loaded here.
//
// The whole payload's size and SHA-256 are checked at the end of the
// spool, as in a streamed restore, and a failure there stops the workers
// and fails the Load.
type pgEarlyLoads struct {
	f       *os.File
	offsets *pgDataOffsets

	tocOnce sync.Once
	toc     chan struct{}  // closed once the table of contents is in f
	head    *dumpinfo.Head // its digest, set before toc is closed

	mu      sync.Mutex
	want    map[int64]bool // TABLE DATA entries to take; nil until known
	ready   []pgBlock      // read whole, not claimed
	claimed map[int64]bool
	loaded  []int64        // finished, in order
	stopped bool           // no more claims
	wake    chan struct{}  // a block is ready: wakes one waiting worker
	halt    chan struct{}  // closed by stop: wakes every waiting worker
	onLoad  func(id int64) // set by follow
}

// pgBlock is a data block that is in the spool file whole.
type pgBlock struct{ id, start, size int64 }

// newPGEarlyLoads loads from spool f, whose parser records offsets.
func newPGEarlyLoads(f *os.File, offsets *pgDataOffsets) *pgEarlyLoads {
	return &pgEarlyLoads{f: f, offsets: offsets, toc: make(chan struct{}), claimed: map[int64]bool{}, wake: make(chan struct{}, 1), halt: make(chan struct{})}
}

func (e *pgEarlyLoads) tocRead(head *dumpinfo.Head) {
	e.tocOnce.Do(func() {
		e.head = head
		close(e.toc)
	})
}

func (e *pgEarlyLoads) blockRead(id, start, size int64) {
	e.mu.Lock()
	e.ready = append(e.ready, pgBlock{id: id, start: start, size: size})
	e.mu.Unlock()
	e.signal()
}

func (e *pgEarlyLoads) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// start sets the entries workers may take (the archive's TABLE DATA).
func (e *pgEarlyLoads) start(data map[int]bool) {
	e.mu.Lock()
	e.want = make(map[int64]bool, len(data))
	for id := range data {
		e.want[int64(id)] = true
	}
	e.mu.Unlock()
	e.signal()
}

// stop ends the claims and returns the entries claimed so far: loaded or
// loading.
func (e *pgEarlyLoads) stop() map[int64]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.stopped {
		e.stopped = true
		close(e.halt)
	}
	return maps.Clone(e.claimed)
}

// follow sends each entry loaded, those before it too, to f.
func (e *pgEarlyLoads) follow(f func(id int64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onLoad = f
	for _, id := range e.loaded {
		f(id)
	}
}

// earlyBatchBytes is how much data a worker takes in one pg_restore when
// the ready tables are small: one pg_restore a table costs a process, a
// connection and a read of the table of contents.
const earlyBatchBytes = 32 << 20

// claim waits for ready tables and takes the largest, with more of the
// next largest while the batch is small and others are left for the other
// workers; it returns nil once claims have stopped.
func (e *pgEarlyLoads) claim(ctx context.Context, jobs int) []pgBlock {
	for {
		e.mu.Lock()
		if e.stopped || ctx.Err() != nil {
			e.mu.Unlock()
			return nil
		}
		var eligible []pgBlock
		if e.want != nil {
			// Blocks of no TABLE DATA entry are left to the run after the
			// spool; what is claimed is no longer ready.
			e.ready = slices.DeleteFunc(e.ready, func(b pgBlock) bool { return !e.want[b.id] || e.claimed[b.id] })
			eligible = slices.Clone(e.ready)
		}
		if len(eligible) > 0 {
			slices.SortFunc(eligible, func(a, b pgBlock) int { return cmp.Compare(b.size, a.size) })
			most := max(1, len(eligible)/jobs)
			batch, bytes := []pgBlock{}, int64(0)
			for _, b := range eligible {
				if len(batch) > 0 && (bytes >= earlyBatchBytes || len(batch) >= most) {
					break
				}
				batch, bytes = append(batch, b), bytes+b.size
				e.claimed[b.id] = true
			}
			e.mu.Unlock()
			if len(batch) < len(eligible) {
				e.signal() // more is ready: pass the wake-up on to another worker
			}
			return batch
		}
		e.mu.Unlock()
		select {
		case <-e.wake:
		case <-e.halt:
		case <-ctx.Done():
		}
	}
}

// done records the batch as loaded.
func (e *pgEarlyLoads) done(batch []pgBlock) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range batch {
		e.loaded = append(e.loaded, b.id)
		if e.onLoad != nil {
			e.onLoad(b.id)
		}
	}
}

// work claims and restores batches until claims stop or ctx is done;
// restore runs pg_restore with the list file of a batch.
func (e *pgEarlyLoads) work(ctx context.Context, jobs int, restore func(ctx context.Context, list string) error) error {
	for {
		batch := e.claim(ctx, jobs)
		if batch == nil {
			return nil
		}
		ids := make([]int64, len(batch))
		for i, b := range batch {
			if _, err := e.offsets.patchOne(e.f, b.id, b.start); err != nil {
				return err
			}
			ids[i] = b.id
		}
		if err := withListFile(e.f.Name(), ids, func(list string) error { return restore(ctx, list) }); err != nil {
			return fmt.Errorf("pg_restore of entries %s while spooling: %w", idList(ids), err)
		}
		e.done(batch)
	}
}

// withListFile writes ids to a pg_restore --use-list file beside the
// spool and runs f with its path, removing the file afterwards.
func withListFile(spool string, ids []int64, f func(path string) error) error {
	list, err := os.CreateTemp(filepath.Dir(spool), "coffer-restore-list-*")
	if err != nil {
		return fmt.Errorf("pg_restore list: %w", err)
	}
	defer os.Remove(list.Name())
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(strconv.FormatInt(id, 10))
		b.WriteByte('\n')
	}
	_, err = list.WriteString(b.String())
	if cerr := list.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pg_restore list %s: %w", list.Name(), err)
	}
	return f(list.Name())
}

// idList prints ids for a message: "3654, 3663".
func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}
