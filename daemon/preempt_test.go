package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage/fs"
)

// blackHole accepts TCP connections and never answers, as a destination
// behind a dropped route does. It counts the connections.
func blackHole(t *testing.T) (addr string, conns *atomic.Int64, shut func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			held = append(held, c)
		}
	}()
	var once sync.Once
	shut = func() {
		once.Do(func() {
			l.Close()
			<-done
			for _, c := range held {
				c.Close()
			}
		})
	}
	t.Cleanup(shut)
	return l.Addr().String(), conns, shut
}

// TestBackupInterruptsStalledMaintenance: a maintenance pass stuck on a
// black-holed destination does not hold the job's backup back. The
// backup interrupts it, starts at once, and lands on the destination that
// answers; the interrupted pass alerts nothing.
func TestBackupInterruptsStalledMaintenance(t *testing.T) {
	cfg, primary, conns, shut := holeConfig(t)
	job := cfg.Jobs["app"]
	hook, notifier := newWebhook(t)
	r := &Runner{Log: zaptest.NewLogger(t), Metrics: metrics.New()}
	r.SetNotifier(notifier)

	maintained := make(chan time.Time, 1)
	go func() {
		r.Maintain(context.Background(), cfg, job)
		maintained <- time.Now()
	}()
	// The pass is stuck once it has reached the black hole.
	for deadline := time.Now().Add(10 * time.Second); conns.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the maintenance pass never reached the black-holed destination")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	ran := make(chan struct{})
	slot := time.Now()
	go func() {
		r.Run(context.Background(), cfg, job, Trigger{Reason: "schedule", Slot: slot})
		close(ran)
	}()
	select {
	case at := <-maintained:
		if d := at.Sub(slot); d > 3*time.Second {
			t.Fatalf("the maintenance pass ended %s after the backup was due; want it interrupted at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backup waited for the stalled maintenance pass")
	}
	// The rest of the cycle needs no black hole: the offsite now refuses
	// connections, which fails it fast.
	shut()
	<-ran

	ids, err := manifest.IDs(context.Background(), mustFS(t, primary), "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("backups on primary: %v, want the one the slot took", ids)
	}
	events := hook.received()
	for _, ev := range events {
		if ev["kind"] == "repair" || ev["kind"] == "prune" {
			t.Errorf("the interrupted maintenance pass alerted: %v", ev)
		}
	}
	if !slices.ContainsFunc(events, func(ev map[string]any) bool { return ev["kind"] == "backup" && ev["outcome"] == "partial" }) {
		t.Errorf("no partial backup reported (primary only, offsite black-holed): %v", events)
	}
}

func mustFS(t *testing.T, dir string) *fs.Store {
	t.Helper()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// holeConfig is a validated configuration of job app, an exec source
// backed up to a local directory (primary, returned) and to an S3
// endpoint that is a black hole (offsite; its connection count and shut
// returned).
func holeConfig(t *testing.T) (cfg *config.Config, primary string, conns *atomic.Int64, shut func()) {
	t.Helper()
	dir := t.TempDir()
	_, recipient, err := seal.GenerateIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyData, pub, err := sign.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Create(filepath.Join(dir, "signing.key"), keyData); err != nil {
		t.Fatal(err)
	}
	hole, conns, shut := blackHole(t)
	primary = filepath.Join(dir, "primary")
	if err := os.Mkdir(primary, 0o700); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`recipients: [%s]
signing:
  key_file: signing.key
  public_keys: [%s]
destinations:
  primary:
    type: local
    path: %s
  offsite:
    type: s3
    endpoint: http://%s
    insecure_http: true
    path_style: true
    bucket: hole
    access_key_id: test
    secret_access_key: test-secret
jobs:
  app:
    source:
      type: exec
      command: [printf, "pupils,rows\n"]
    destinations: [primary, offsite]
    stall_timeout: 2s
daemon:
  listen: "off"
  state_dir: %s
`, recipient, pub, primary, hole, filepath.Join(dir, "state"))
	path := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, primary, conns, shut
}

// TestSweepDoesNotWaitForAHungDestination: a payload left without a
// manifest on primary (a run killed before its commit), older than the
// leftover grace, is swept at the start of a maintenance pass, while the
// pass still waits on a black-holed offsite; before, sweeping came last,
// after repair and prune had waited on the black hole.
func TestSweepDoesNotWaitForAHungDestination(t *testing.T) {
	cfg, primary, conns, _ := holeConfig(t)
	cfg.Daemon.LeftoverGrace = config.Duration(time.Minute)
	job := cfg.Jobs["app"]
	orphan := filepath.Join(primary, "app", "20261101T020000.000Z-0abc", "payload.dump.zst.age")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("age-encrypted leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Log: zaptest.NewLogger(t), Metrics: metrics.New()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		r.Maintain(ctx, cfg, job)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(3 * time.Second); ; {
		if _, err := os.Stat(orphan); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan payload on primary was not swept within 3 s while offsite hung (%d connections to the black hole)", conns.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("the pass ended before the black hole held it: the test proves nothing")
	default:
	}
}
