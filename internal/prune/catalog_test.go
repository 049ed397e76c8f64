package prune_test

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// twoDirs returns two local directories as the job's two destinations.
func twoDirs(t *testing.T) ([]storage.Destination, map[string]storage.Store) {
	t.Helper()
	stores := map[string]storage.Store{}
	var dests []storage.Destination
	for _, name := range []string{"primary", "offsite"} {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		stores[name] = s
		dests = append(dests, storage.Destination{Name: name, Store: s})
	}
	return dests, stores
}

// TestManifestWithoutPayloadIsNotACopy: a verified manifest whose payload
// is missing (a lost response once left one) does not count as a copy.
// The only real copy of an old backup, on the primary, is kept by the
// only-copy rule; the offsite manifest is reported incomplete and not
// deleted. Before, prune read manifests only, counted two copies and
// deleted the primary's: the backup was lost. On local directories and
// real MinIO buckets.
func TestManifestWithoutPayloadIsNotACopy(t *testing.T) {
	for kind, open := range map[string]func(*testing.T) ([]storage.Destination, map[string]storage.Store){"fs": twoDirs, "minio": twoBuckets} {
		t.Run(kind, func(t *testing.T) {
			dests, stores := open(t)
			for _, age := range []day_{1, 8} {
				putBackup(t, stores, "app", now.Add(-age.d()), "primary", "offsite")
			}
			old := putBackup(t, stores, "app", now.Add(-40*day), "primary", "offsite")
			m, err := manifest.Read(t.Context(), stores["offsite"], "offsite", "app", old, testTrust)
			if err != nil {
				t.Fatal(err)
			}
			if err := stores["offsite"].Delete(t.Context(), m.Payload.Key); err != nil {
				t.Fatal(err)
			}

			res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now}}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]prune.Item{}
			for _, it := range res.Items {
				if it.ID == old {
					got[it.Destination] = it
				}
			}
			if p := got["primary"]; p.Outcome != "kept" || p.Rule != retention.RuleOnlyCopy {
				t.Errorf("primary's copy of %s: %+v, want kept by %s", old, p, retention.RuleOnlyCopy)
			}
			if o := got["offsite"]; o.Outcome != prune.OutcomeIncomplete || !o.Keep {
				t.Errorf("offsite's manifest of %s: %+v, want reported %s and kept", old, o, prune.OutcomeIncomplete)
			}
			if !slices.Contains(backuptest.Keys(t, stores["primary"]), m.Payload.Key) {
				t.Fatalf("primary's payload of %s was deleted: the backup is lost", old)
			}
			if !slices.Contains(backuptest.Keys(t, stores["offsite"]), manifest.Key("app", old)) {
				t.Errorf("offsite's manifest of %s was deleted; repair heals it, prune must leave it", old)
			}
		})
	}
}

// day_ is a number of days.
type day_ int

func (n day_) d() time.Duration { return time.Duration(n) * day }
