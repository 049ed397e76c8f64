package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// countingStore counts the manifest objects read from a real store.
type countingStore struct {
	storage.Store
	gets *atomic.Int64
}

func (c countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.HasSuffix(key, "/"+manifest.FileName) {
		c.gets.Add(1)
	}
	return c.Store.Get(ctx, key)
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// putBackup stores a whole backup of job taken at t on each of stores.
func putBackup(t *testing.T, signer *sign.Signer, job string, at time.Time, stores ...storage.Store) {
	t.Helper()
	id := manifest.NewID(at)
	payload := []byte("age-encrypted zstd of " + job + "/" + id)
	key := manifest.PayloadKey(job, id, "sqlite")
	m := &manifest.Manifest{
		FormatVersion: manifest.FormatVersion, ID: id, Job: job,
		Source:  dumpinfo.Info{Kind: "sqlite", Database: job, Format: "sqlite"},
		Started: at, Finished: at.Add(time.Minute),
		Plain:       manifest.Digest{Bytes: 100, SHA256: hexSum([]byte("plain " + id))},
		Payload:     manifest.Payload{Key: key, Digest: manifest.Digest{Bytes: int64(len(payload)), SHA256: hexSum(payload)}, HeaderSHA256: hexSum([]byte("header " + id))},
		Compression: manifest.Compression{Algorithm: "zstd", Level: 3},
		Encryption:  manifest.Encryption{Algorithm: "age", Recipients: []string{"age1example"}},
		Sequence:    1,
	}
	for _, d := range []string{"primary", "offsite"} {
		m.Copies = append(m.Copies, manifest.Copy{Destination: d, Key: key, Bytes: m.Payload.Bytes, SHA256: m.Payload.SHA256})
	}
	for _, s := range stores {
		if _, err := s.Put(context.Background(), key, bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}
		if err := manifest.Write(context.Background(), s, m, signer); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaintenanceManifestReads measures the manifest GETs of the
// daemon's maintenance of 3 jobs x 2 destinations x 10 backups on real
// MinIO buckets: the first pass reads each manifest once (repair and
// prune share the catalog), and the next passes read none (the state
// directory's cache serves them under their ETag). Before the catalog,
// prune read every manifest on every destination on every pass (60 GETs
// a pass here, always).
func TestMaintenanceManifestReads(t *testing.T) {
	signer := signtest.NewSigner()
	cfg := &config.Config{Signing: config.Signing{PublicKeys: []sign.PublicKey{signer.Public()}}}
	cfg.Daemon.LeftoverGrace = config.Duration(24 * time.Hour)
	primary, offsite := s3test.NewBucket(t, "primary"), s3test.NewBucket(t, "offsite")
	var gets atomic.Int64
	dests := []storage.Destination{{Name: "primary", Store: countingStore{primary, &gets}}, {Name: "offsite", Store: countingStore{offsite, &gets}}}
	now := time.Now().UTC()
	var jobs []*config.Job
	for j := range 3 {
		job := &config.Job{Name: fmt.Sprintf("app%d", j), Timezone: "UTC"}
		job.Retention.KeepWithin = config.Duration(28 * 24 * time.Hour)
		job.Retention.MinKeep = 2
		if err := job.Resolve(); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
		for b := range 10 {
			at := now.Add(-time.Duration(b) * 24 * time.Hour)
			putBackup(t, signer, job.Name, at, primary, offsite)
		}
	}
	cache, err := manifest.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Log: zaptest.NewLogger(t), Manifests: cache, Now: func() time.Time { return now }}
	pass := func() int64 {
		gets.Store(0)
		for _, job := range jobs {
			r.maintain(context.Background(), r.Log, cfg, job, dests)
		}
		return gets.Load()
	}
	first, second, third := pass(), pass(), pass()
	t.Logf("manifest GETs per maintenance pass (3 jobs x 2 destinations x 10 backups): first %d, second %d, third %d", first, second, third)
	if first != 60 || second != 0 || third != 0 {
		t.Fatalf("manifest GETs per pass: %d, %d, %d; want 60 (each manifest once), then 0 (cached)", first, second, third)
	}
}
