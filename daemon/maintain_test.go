package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
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
			backuptest.Put(t, signer, backuptest.Fake(t, job.Name, manifest.NewID(at), nil, "primary", "offsite"), nil, primary, offsite)
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
