package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// These tests drive the pipeline with exec sources and local-directory
// stores (both real parts); the S3 and database paths are covered in
// internal/e2e.

func newStore(t *testing.T) *fs.Store {
	t.Helper()
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func execSource(t *testing.T, script string) snapshot.Source {
	t.Helper()
	src, err := snapshot.NewSource(config.Source{Type: "exec", Command: []string{"sh", "-c", script}, Extension: "bin"})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// testSigner signs the manifests of these tests; testTrust trusts it.
var (
	testSigner = signtest.NewSigner()
	testTrust  = signtest.Trust(testSigner)
)

func newIdentity(t *testing.T) (*age.X25519Identity, string) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Recipient().String()
}

// failingStore wraps a real store and fails every Put after n bytes.
type failingStore struct {
	storage.Store
	n int64
}

var errInjected = errors.New("injected upload failure")

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	return f.Store.Put(ctx, key, io.MultiReader(io.LimitReader(r, f.n), errReader{}))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

func TestRoundTripToTwoDestinations(t *testing.T) {
	id, rcpt := newIdentity(t)
	primary, offsite := newStore(t), newStore(t)
	dataFile := filepath.Join(t.TempDir(), "data")
	data := bytes.Repeat([]byte("pupil,lesson,teacher,2026-11-23\n"), 200_000) // 6.4 MB
	os.WriteFile(dataFile, data, 0o600)

	job := backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "cat "+dataFile), Recipients: []string{rcpt}, Level: 3, Threads: 2,
		Destinations: []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}},
	}
	res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.OK {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	sum := sha256.Sum256(data)
	if res.Manifest.Plain.SHA256 != hex.EncodeToString(sum[:]) || res.Manifest.Plain.Bytes != int64(len(data)) {
		t.Fatalf("manifest plain %+v does not describe the dump", res.Manifest.Plain)
	}
	if res.Manifest.Payload.Bytes >= int64(len(data))/10 {
		t.Errorf("payload %d bytes for %d repetitive bytes: not compressed?", res.Manifest.Payload.Bytes, len(data))
	}
	out := filepath.Join(t.TempDir(), "restored")
	req := restore.Request{Job: "app", Identities: []age.Identity{id}, Trust: testTrust,
		Destinations: []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}}}
	rep, err := restore.Run(context.Background(), req, func(dumpinfo.Info) (snapshot.Loader, error) {
		return restore.FileLoader(out, false), nil
	}, zaptest.NewLogger(t))
	if err != nil || rep.ServedBy != "primary" {
		t.Fatalf("restore = %+v, %v", rep, err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("restored bytes differ from the dump")
	}
}

// TestManifestRecordsJobVersion: the manifest stored on every destination
// records the Coffer version the job passed as its coffer_version.
func TestManifestRecordsJobVersion(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary, offsite := newStore(t), newStore(t)
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}}
	const version = "v1.2.3-0.20261202173203-b4f7f6bfac57+dirty"
	res, err := backup.Run(context.Background(), backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "echo lessons"), Recipients: []string{rcpt}, Level: 1, Threads: 1,
		Destinations: dests, Version: version,
	}, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.OK {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	for _, d := range dests {
		rc, err := d.Store.Get(context.Background(), manifest.Key("app", res.ID))
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Decode(data, testTrust)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if m.CofferVersion != version {
			t.Errorf("%s: manifest coffer_version %q; want the job's %q", d.Name, m.CofferVersion, version)
		}
	}
}

func TestFailedDumpLeavesNothing(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary, offsite := newStore(t), newStore(t)
	// 8 MB of output, then exit 1: bytes were streamed, the run must fail.
	job := backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "head -c 8000000 /dev/urandom; echo 'disk error' >&2; exit 1"),
		Recipients: []string{rcpt}, Level: 3, Threads: 2,
		Destinations: []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}},
	}
	res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
	if err == nil || res.Outcome != backup.Failed {
		t.Fatalf("Run = %+v, %v; want failed", res, err)
	}
	if !strings.Contains(err.Error(), "disk error") {
		t.Errorf("error does not carry the dump's stderr: %v", err)
	}
	for _, s := range []storage.Store{primary, offsite} {
		if k := backuptest.Keys(t, s); len(k) != 0 {
			t.Fatalf("%s holds %v after a failed dump", s, k)
		}
	}
}

func TestCancelledBackupLeavesNothing(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	job := backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "head -c 4000000 /dev/urandom; sleep 30"),
		Recipients: []string{rcpt}, Level: 1, Threads: 1,
		Destinations: []storage.Destination{{Name: "primary", Store: primary}},
	}
	go func() {
		// Cancel once the payload is flowing.
		for len(backuptest.Keys(t, primary)) == 0 && ctx.Err() == nil {
			if entries, _ := os.ReadDir(primary.Root()); len(entries) > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := backup.Run(ctx, job, zaptest.NewLogger(t)); err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	if k := backuptest.Keys(t, primary); len(k) != 0 {
		t.Fatalf("primary holds %v after a cancelled backup", k)
	}
}

func TestOneDestinationFailsIsPartial(t *testing.T) {
	id, rcpt := newIdentity(t)
	primary := newStore(t)
	broken := &failingStore{Store: newStore(t), n: 1 << 20}
	job := backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "head -c 6000000 /dev/urandom"), Recipients: []string{rcpt}, Level: 3, Threads: 2,
		Destinations: []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: broken}},
	}
	res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.Partial {
		t.Fatalf("Run = %+v, %v; want partial", res, err)
	}
	if len(res.Manifest.Copies) != 1 || res.Manifest.Copies[0].Destination != "primary" {
		t.Fatalf("copies = %+v, want primary only", res.Manifest.Copies)
	}
	if k := backuptest.Keys(t, broken.Store); len(k) != 0 {
		t.Fatalf("the failed destination holds %v", k)
	}
	checks, err := restore.Verify(context.Background(), "app", "", []storage.Destination{{Name: "primary", Store: primary}}, []age.Identity{id}, testTrust)
	if err != nil || len(checks) != 1 || !checks[0].OK {
		t.Fatalf("verify of the committed copy: %+v, %v", checks, err)
	}
}

// TestEmptyOrShrunkDumpFails: a dump that exits 0 but writes nothing, or
// far less than the previous backup, is never committed as a good backup;
// the previous backup stays.
func TestEmptyOrShrunkDumpFails(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary, offsite := newStore(t), newStore(t)
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}}
	run := func(script string, maxShrink int) (*backup.Result, error) {
		return backup.Run(context.Background(), backup.Job{
			Name: "app", Signer: testSigner, Source: execSource(t, script), Recipients: []string{rcpt}, Level: 3, Threads: 2,
			Destinations: dests, Trust: testTrust, MaxShrinkPercent: maxShrink,
		}, zaptest.NewLogger(t))
	}
	if _, err := run("head -c 1000000 /dev/urandom", 0); err != nil {
		t.Fatal(err)
	}
	before := map[storage.Store][]string{primary: backuptest.Keys(t, primary), offsite: backuptest.Keys(t, offsite)}

	prior := backup.ReadPrior(context.Background(), "app", dests, testTrust, time.Minute, zaptest.NewLogger(t))
	floor := prior.ShrinkFloor(50)
	if floor != 500000 {
		t.Fatalf("ShrinkFloor = %d, want 500000 (half of the previous 1 MB)", floor)
	}
	for _, tc := range []struct{ name, script, want string }{
		{"empty", "true", "the dump is empty"},
		{"shrunk", "head -c 100000 /dev/urandom", "max_shrink_percent"},
	} {
		res, err := run(tc.script, 50)
		if err == nil || res.Outcome != backup.Failed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s dump: %v, %v; want failed with %q", tc.name, res, err, tc.want)
		}
		for s, want := range before {
			if got := backuptest.Keys(t, s); !slices.Equal(got, want) {
				t.Errorf("%s dump changed %s: %v, want %v", tc.name, s, got, want)
			}
		}
	}
	if _, err := run("head -c 600000 /dev/urandom", 50); err != nil {
		t.Errorf("a dump above the floor failed: %v", err)
	}
	if prior.ShrinkFloor(100) != 0 {
		t.Error("max_shrink_percent 100 must turn the check off")
	}
}

// blackHole is a destination whose upload stops taking data after limit
// bytes and never returns until cancelled, like a connection to a server
// that went silent mid-upload (mid-transfer when limit is small, at
// completion when limit exceeds the payload).
type blackHole struct {
	storage.Store
	limit int64
}

func (b blackHole) Put(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	if _, err := io.CopyN(io.Discard, r, b.limit); err != nil && err != io.EOF {
		return storage.ObjectInfo{}, err
	}
	<-ctx.Done()
	return storage.ObjectInfo{}, ctx.Err()
}

// TestStalledDestinationIsDropped: a destination that stops taking data,
// mid-transfer or at completion, is dropped after the stall timeout; the
// other destination commits the backup (partial) and nothing hangs.
func TestStalledDestinationIsDropped(t *testing.T) {
	_, rcpt := newIdentity(t)
	for _, tc := range []struct {
		name  string
		limit int64
	}{{"mid-transfer", 100 << 10}, {"at completion", 1 << 40}} {
		t.Run(tc.name, func(t *testing.T) {
			primary := newStore(t)
			hole := blackHole{Store: newStore(t), limit: tc.limit}
			job := backup.Job{
				Name: "app", Signer: testSigner, Source: execSource(t, "head -c 8000000 /dev/urandom"),
				Recipients: []string{rcpt}, Level: 3, Threads: 2, StallTimeout: 500 * time.Millisecond,
				Destinations: []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: hole}},
			}
			start := time.Now()
			res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
			if err != nil || res.Outcome != backup.Partial {
				t.Fatalf("Run = %+v, %v; want partial", res, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s with a 500ms stall timeout", d)
			}
			for _, d := range res.Destinations {
				if d.Name == "offsite" && (d.Err == nil || !strings.Contains(d.Err.Error(), "stalled")) {
					t.Errorf("offsite error %v, want a stall", d.Err)
				}
			}
			if k := backuptest.Keys(t, primary); len(k) != 2 {
				t.Errorf("primary holds %v, want payload and manifest", k)
			}
		})
	}
}

// listAfter is a store whose listings wait until a file exists (or give
// up after ten seconds), and which records whether they had to give up.
type listAfter struct {
	storage.Store
	file     string
	gaveUp   *atomic.Bool
	listings *atomic.Int32
}

func (l listAfter) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	l.listings.Add(1)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(l.file); err == nil {
			break
		}
		if time.Now().After(deadline) {
			l.gaveUp.Store(true)
			break
		}
	}
	return l.Store.List(ctx, prefix)
}

// TestPriorReadWhileDumping: the earlier backups' manifests are read while
// the dump runs, not before it starts (a destination slow to list does not
// hold the dump up), and what they say is used: the next sequence number,
// and the shrink floor that fails a dump far smaller than the last one.
func TestPriorReadWhileDumping(t *testing.T) {
	_, rcpt := newIdentity(t)
	marker := filepath.Join(t.TempDir(), "dump-started")
	var gaveUp atomic.Bool
	var listings atomic.Int32
	var dests []storage.Destination
	for _, name := range []string{"primary", "offsite"} {
		dests = append(dests, storage.Destination{Name: name, Store: listAfter{Store: newStore(t), file: marker, gaveUp: &gaveUp, listings: &listings}})
	}
	run := func(bytes int) (*backup.Result, error) {
		os.Remove(marker)
		return backup.Run(context.Background(), backup.Job{
			Name: "app", Signer: testSigner, Recipients: []string{rcpt}, Level: 3, Threads: 2, Destinations: dests,
			Source: execSource(t, fmt.Sprintf("touch %s; head -c %d /dev/urandom", marker, bytes)),
			Trust:  testTrust, MaxShrinkPercent: 50,
		}, zaptest.NewLogger(t))
	}
	for want := int64(1); want <= 2; want++ {
		res, err := run(1_000_000)
		if err != nil || res.Outcome != backup.OK {
			t.Fatalf("backup %d: %+v, %v", want, res, err)
		}
		if res.Manifest.Sequence != want {
			t.Errorf("backup %d has sequence %d", want, res.Manifest.Sequence)
		}
	}
	if gaveUp.Load() || listings.Load() < 4 {
		t.Fatalf("%d listings, gave up waiting for the dump: %v; want the earlier backups listed once the dump had started", listings.Load(), gaveUp.Load())
	}
	res, err := run(100_000)
	if err == nil || res.Outcome != backup.Failed || !strings.Contains(err.Error(), "max_shrink_percent") {
		t.Fatalf("a dump a tenth the size of the last: %+v, %v; want failed by the shrink check", res, err)
	}
}

// parted makes a store report S3-like part sizes, so that the fan-out
// gives its uploads shared part buffers (read here through Read).
type parted struct {
	storage.Store
	size int64
}

func (p parted) PartSize(int32) int64 { return p.size }
func (p parted) PartBuffers() int     { return 2 }

// partedHole is a black hole that reports part sizes.
type partedHole struct {
	blackHole
	size int64
}

func (p partedHole) PartSize(int32) int64 { return p.size }
func (p partedHole) PartBuffers() int     { return 2 }

// TestSharedPartsRoundTrip: with shared part buffers (both destinations
// report the same part sizes) both copies hold the dump, for a stream of
// one short part and one of many.
func TestSharedPartsRoundTrip(t *testing.T) {
	id, rcpt := newIdentity(t)
	for _, size := range []int{1, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			primary, offsite := newStore(t), newStore(t)
			dataFile := filepath.Join(t.TempDir(), "data")
			data := make([]byte, size)
			rand.Read(data)
			os.WriteFile(dataFile, data, 0o600)
			dests := []storage.Destination{{Name: "primary", Store: parted{primary, 64 << 10}}, {Name: "offsite", Store: parted{offsite, 64 << 10}}}
			job := backup.Job{Name: "app", Signer: testSigner, Source: execSource(t, "cat "+dataFile), Recipients: []string{rcpt},
				Level: 3, Threads: 2, Destinations: dests}
			res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
			if err != nil || res.Outcome != backup.OK {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			for _, d := range dests {
				out := filepath.Join(t.TempDir(), "restored")
				req := restore.Request{Job: "app", Identities: []age.Identity{id}, Trust: testTrust, Destinations: []storage.Destination{d}}
				if _, err := restore.Run(context.Background(), req, func(dumpinfo.Info) (snapshot.Loader, error) {
					return restore.FileLoader(out, false), nil
				}, zaptest.NewLogger(t)); err != nil {
					t.Fatalf("restore from %s: %v", d.Name, err)
				}
				if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
					t.Fatalf("%s: restored bytes differ from the dump", d.Name)
				}
			}
		})
	}
}

// TestSharedPartsStalledDestinationIsDropped: with shared part buffers, a
// destination that stops taking parts holds buffers the other needs; it is
// dropped after the stall timeout and the other commits the backup.
func TestSharedPartsStalledDestinationIsDropped(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary := newStore(t)
	hole := partedHole{blackHole: blackHole{Store: newStore(t), limit: 100 << 10}, size: 64 << 10}
	job := backup.Job{
		Name: "app", Signer: testSigner, Source: execSource(t, "head -c 8000000 /dev/urandom"),
		Recipients: []string{rcpt}, Level: 3, Threads: 2, StallTimeout: 500 * time.Millisecond,
		Destinations: []storage.Destination{{Name: "primary", Store: parted{primary, 64 << 10}}, {Name: "offsite", Store: hole}},
	}
	start := time.Now()
	res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.Partial {
		t.Fatalf("Run = %+v, %v; want partial", res, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s with a 500ms stall timeout", d)
	}
	for _, d := range res.Destinations {
		if d.Name == "offsite" && (d.Err == nil || !strings.Contains(d.Err.Error(), "stalled")) {
			t.Errorf("offsite error %v, want a stall", d.Err)
		}
	}
	if k := backuptest.Keys(t, primary); len(k) != 2 {
		t.Errorf("primary holds %v, want payload and manifest", k)
	}
}
