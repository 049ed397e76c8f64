package prune_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

// newBucketWith creates a bucket with Object Lock or versioning on the
// primary test server; uploads get lockFor of governance retention.
func newBucketWith(t *testing.T, bo s3.BucketOptions, lockFor time.Duration) (*s3.Store, string) {
	t.Helper()
	var bucket string
	st := s3test.NewBucketWith(t, "primary", bo, func(o *s3.Options) {
		if lockFor > 0 {
			o.LockMode, o.LockFor = s3.LockGovernance, lockFor
		}
		bucket = o.Bucket
	})
	return st, bucket
}

// TestPruneSkipsLockedBackups: expired backups whose objects are under
// Object Lock are kept, reported as locked, and still readable.
func TestPruneSkipsLockedBackups(t *testing.T) {
	t.Parallel()
	st, _ := newBucketWith(t, s3.BucketOptions{ObjectLock: true}, time.Hour)
	stores := map[string]storage.Store{"primary": st}
	real := time.Now()
	var ids []string
	for _, age := range []time.Duration{60 * day, 50 * day, 40 * day, 2 * day, day} {
		ids = append(ids, putBackup(t, stores, "app", real.Add(-age), "primary"))
	}
	before := backuptest.Keys(t, st)
	// Alone, every backup is the only copy and is kept whatever its age.
	dests := []storage.Destination{{Name: "primary", Store: st}}
	res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: real}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted("") != 0 {
		t.Fatalf("only copies deleted: %+v", res.Items)
	}
	// Listed twice, each backup has two copies: the expired ones reach
	// the delete, which the lock refuses.
	dests = append(dests, storage.Destination{Name: "mirror", Store: st})
	res, err = prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: real}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	locked := map[string]bool{}
	for _, it := range res.Items {
		switch {
		case it.Outcome == "deleted":
			t.Errorf("%s on %s deleted despite Object Lock", it.ID, it.Destination)
		case it.Outcome == "locked":
			locked[it.ID] = true
			if !strings.Contains(it.Error, "retained until") {
				t.Errorf("locked item does not say until when: %q", it.Error)
			}
		}
	}
	for _, id := range ids[:3] {
		if !locked[id] {
			t.Errorf("expired backup %s not reported as locked (items %+v)", id, res.Items)
		}
	}
	for _, d := range []string{"primary", "mirror"} {
		if n := res.Locked(d); n != 3 {
			t.Errorf("Locked(%s) = %d, want 3 (the expired backups)", d, n)
		}
	}
	if got := backuptest.Keys(t, st); !slices.Equal(got, before) {
		t.Errorf("objects changed:\n got %v\nwant %v", got, before)
	}
	if _, err := manifest.Read(t.Context(), st, "primary", "app", ids[0], testTrust); err != nil {
		t.Errorf("locked backup no longer readable: %v", err)
	}
	if ru, err := st.RetainUntil(t.Context(), manifest.Key("app", ids[0])); err != nil || ru.Before(real.Add(50*time.Minute)) {
		t.Errorf("manifest retain-until %s, %v; want about an hour from now", ru, err)
	}
}

// TestPurgeRemovesHiddenVersions: on a versioned bucket, purge also
// removes old versions of objects whose current version is a delete
// marker, so nothing of the tenant can be recovered.
func TestPurgeRemovesHiddenVersions(t *testing.T) {
	t.Parallel()
	st, bucket := newBucketWith(t, s3.BucketOptions{Versioning: true}, 0)
	stores := map[string]storage.Store{"primary": st}
	id := putBackup(t, stores, "app", time.Now().Add(-day), "primary")
	hidden := manifest.Dir("app", id) + "old-notes.txt"
	if _, err := st.Put(t.Context(), hidden, strings.NewReader("tenant data")); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(t.Context(), hidden); err != nil { // a delete marker hides it
		t.Fatal(err)
	}
	other := putBackup(t, stores, "web", time.Now().Add(-day), "primary")

	r := prune.Purge(t.Context(), "app", storage.Destination{Name: "primary", Store: st}, zap.NewNop())
	if r.Error != "" || r.Backups != 1 {
		t.Fatalf("purge: %+v", r)
	}
	client := rawClient(testenv.S3(t, "primary"))
	if left := versions(t, client, bucket, "app/"); len(left) != 0 {
		t.Errorf("versions of app left after purge: %v", left)
	}
	if left := versions(t, client, bucket, "web/"); len(left) != 2 {
		t.Errorf("the other job's versions: %v, want its manifest and payload", left)
	}
	if _, err := manifest.Read(t.Context(), st, "primary", "web", other, testTrust); err != nil {
		t.Errorf("other job's backup damaged: %v", err)
	}
}
