package backup_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// flakyNetwork wraps a real store the way a broken network path does:
// the store itself is real, only answers are lost. A manifest's Create is
// carried out by the store when commits is true, and then reports an
// error either way (the response was lost, or a 5xx came back); reading a
// manifest fails when reads is not nil.
type flakyNetwork struct {
	storage.Store
	commits bool
	reads   error
}

var errLost = errors.New("connection reset by peer (response lost)")

func (f flakyNetwork) Create(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	if !strings.HasSuffix(key, "/"+manifest.FileName) {
		return storage.Create(ctx, f.Store, key, r)
	}
	if f.commits {
		if _, err := storage.Create(ctx, f.Store, key, r); err != nil {
			return storage.ObjectInfo{}, err
		}
	}
	return storage.ObjectInfo{}, errLost
}

func (f flakyNetwork) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if f.reads != nil && strings.HasSuffix(key, "/"+manifest.FileName) {
		return nil, f.reads
	}
	return f.Store.Get(ctx, key)
}

// TestCommitDecidedByReadingBack: when a manifest write reports an
// error, the backup reads the manifest back and decides from what the
// destination holds, never by guessing. A committed manifest whose
// response was lost is a committed copy (its payload stays: before, it
// was deleted, leaving a signed manifest with no payload that prune
// counted as a copy); a manifest proven absent takes its payload with
// it; when it cannot tell, the payload stays for repair or the sweep.
// Run on local directories and on real MinIO buckets.
func TestCommitDecidedByReadingBack(t *testing.T) {
	stores := map[string]func(t *testing.T) storage.Store{
		"fs":    func(t *testing.T) storage.Store { return newStore(t) },
		"minio": func(t *testing.T) storage.Store { return s3test.NewBucket(t, "offsite") },
	}
	cases := []struct {
		name          string
		commits       bool
		reads         error
		committed     bool // the offsite copy counts as committed
		manifest      bool // offsite holds the manifest afterwards
		payload       bool // offsite holds the payload afterwards
		errorContains string
	}{
		{name: "response lost after commit", commits: true, committed: true, manifest: true, payload: true},
		{name: "refused before commit", commits: false, manifest: false, payload: false, errorContains: errLost.Error()},
		{name: "committed, read back fails", commits: true, reads: errors.New("503 Slow Down"), manifest: true, payload: true, errorContains: "commit unknown"},
		{name: "not committed, read back fails", commits: false, reads: errors.New("503 Slow Down"), manifest: false, payload: true, errorContains: "commit unknown"},
	}
	for kind, open := range stores {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				_, rcpt := newIdentity(t)
				primary, offsite := newStore(t), open(t)
				dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: flakyNetwork{offsite, tc.commits, tc.reads}}}
				res, err := backup.Run(ctx, backup.Job{
					Name: "app", Signer: testSigner, Trust: testTrust, Source: execSource(t, "head -c 300000 /dev/urandom"),
					Recipients: []string{rcpt}, Level: 1, Threads: 1, Destinations: dests,
				}, zaptest.NewLogger(t))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				wantOutcome := backup.Partial
				if tc.committed {
					wantOutcome = backup.OK
				}
				off := res.Destinations[1]
				if res.Outcome != wantOutcome {
					t.Fatalf("outcome %s (offsite: %v), want %s", res.Outcome, off.Err, wantOutcome)
				}
				if tc.errorContains != "" && (off.Err == nil || !strings.Contains(off.Error, tc.errorContains)) {
					t.Fatalf("offsite error %q, want it to contain %q", off.Error, tc.errorContains)
				}
				got := backuptest.Keys(t, offsite)
				hasManifest := slices.Contains(got, manifest.Key("app", res.ID))
				hasPayload := slices.Contains(got, res.Manifest.Payload.Key)
				if hasManifest != tc.manifest || hasPayload != tc.payload {
					t.Fatalf("offsite holds %v: manifest %v payload %v, want manifest %v payload %v", got, hasManifest, hasPayload, tc.manifest, tc.payload)
				}
				// The invariant: a verified manifest never lacks its payload.
				c := manifest.ReadCatalog(ctx, "app", []storage.Destination{{Name: "offsite", Store: offsite}}, testTrust, nil)
				if len(c.Incomplete) != 0 {
					t.Fatalf("offsite holds a verified manifest without its payload: %+v", c.Incomplete)
				}
			})
		}
	}
}

// TestCommitAfterCancelMidWrite: a run cancelled while its manifest is
// being written decides by reading back on a context of its own.
func TestCommitAfterCancelMidWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, rcpt := newIdentity(t)
	primary := newStore(t)
	dests := []storage.Destination{{Name: "primary", Store: cancelAfterCommit{primary, cancel}}}
	res, err := backup.Run(ctx, backup.Job{
		Name: "app", Signer: testSigner, Trust: testTrust, Source: execSource(t, "head -c 100000 /dev/urandom"),
		Recipients: []string{rcpt}, Level: 1, Threads: 1, Destinations: dests,
	}, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.OK {
		t.Fatalf("Run = %+v, %v; want the committed backup reported ok", res, err)
	}
	c := manifest.ReadCatalog(context.Background(), "app", []storage.Destination{{Name: "primary", Store: primary}}, testTrust, nil)
	if len(c.Backups) != 1 || len(c.Incomplete) != 0 {
		t.Fatalf("catalog = %+v, want the backup whole", c)
	}
}

// cancelAfterCommit commits a manifest, then cancels the run and reports
// the cancel, as a Create interrupted after the server committed would.
type cancelAfterCommit struct {
	storage.Store
	cancel context.CancelFunc
}

func (c cancelAfterCommit) Create(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	info, err := storage.Create(ctx, c.Store, key, r)
	if err != nil || !strings.HasSuffix(key, "/"+manifest.FileName) {
		return info, err
	}
	c.cancel()
	return storage.ObjectInfo{}, context.Canceled
}
