package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestEarlyLoadsStopWakesIdleWorkers: workers that have loaded every ready
// table and wait for more all return once the spool ends (stop), and two
// blocks that become ready together go to both workers at once. Pure
// scheduling: restore stands in for pg_restore (the real runs are
// TestPostgresParallelLoadsWhileSpooling's).
func TestEarlyLoadsStopWakesIdleWorkers(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := newPGEarlyLoads(f, &pgDataOffsets{})
	e.start(map[int]bool{1: true, 2: true})
	var (
		mu      sync.Mutex
		running int
		both    = make(chan struct{})
		release = make(chan struct{})
	)
	restore := func(ctx context.Context, list string) error {
		mu.Lock()
		running++
		if running == 2 {
			close(both)
		}
		mu.Unlock()
		<-release
		return nil
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := e.work(t.Context(), 2, restore); err != nil {
				t.Error(err)
			}
		})
	}
	e.blockRead(1, 100, 10)
	e.blockRead(2, 200, 10)
	select {
	case <-both:
	case <-time.After(10 * time.Second):
		t.Fatal("two ready tables did not load side by side")
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e.mu.Lock()
		n := len(e.loaded)
		e.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 tables loaded", n)
		}
	}
	if claimed := e.stop(); len(claimed) != 2 {
		t.Errorf("claimed %v, want both tables", claimed)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("idle workers did not return after stop")
	}
}
