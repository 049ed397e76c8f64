package prune_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
)

// testSigner signs the manifests of these tests; testTrust trusts it.
var (
	testSigner = signtest.NewSigner()
	testTrust  = signtest.Trust(testSigner)
)

// forge replaces the manifest of backup id on s by the same manifest
// signed with a key nobody trusts.
func forge(t *testing.T, s storage.Store, dest, id string) {
	t.Helper()
	m, err := manifest.Read(t.Context(), s, dest, "app", id, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Sign(signtest.NewSigner())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), manifest.Key("app", id), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// TestRunIgnoresUnverifiedCopies: a copy whose manifest fails its
// signature check is neither counted nor deleted. Old backups whose
// offsite manifest is forged are only copies on the primary and kept;
// the forged copies stay, reported unverified; genuine expired backups are
// still deleted on both destinations.
func TestRunIgnoresUnverifiedCopies(t *testing.T) {
	t.Parallel()
	dests, stores := twoBuckets(t)
	ids := map[time.Duration]string{}
	for _, age := range []time.Duration{day, 8 * day, 40 * day, 47 * day, 60 * day, 67 * day} {
		ids[age] = putBackup(t, stores, "app", now.Add(-age), "primary", "offsite")
	}
	forge(t, stores["offsite"], "offsite", ids[40*day])
	forge(t, stores["offsite"], "offsite", ids[47*day])
	intruder := putBackup(t, stores, "app", now.Add(-time.Hour), "primary")
	forge(t, stores["primary"], "primary", intruder)

	res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ dest, id string }
	got := map[key]prune.Item{}
	for _, it := range res.Items {
		got[key{it.Destination, it.ID}] = it
	}
	for _, k := range []key{{"offsite", ids[40*day]}, {"offsite", ids[47*day]}, {"primary", intruder}} {
		it := got[k]
		if it.Outcome != "unverified" || !it.Keep || !strings.Contains(it.Error, "signature: signed by an unknown key") {
			t.Errorf("%s on %s: %+v, want unverified with the signature error", k.id, k.dest, it)
		}
	}
	for _, age := range []time.Duration{40 * day, 47 * day} {
		if it := got[key{"primary", ids[age]}]; it.Rule != retention.RuleOnlyCopy || it.Outcome != "kept" {
			t.Errorf("%s old backup on primary: %+v, want kept as the only good copy", ids[age], it)
		}
	}
	if it := got[key{"primary", ids[day]}]; it.Rule != retention.RuleNewest {
		t.Errorf("newest genuine backup: rule %s, want newest (the forged newer one does not count)", it.Rule)
	}
	for _, age := range []time.Duration{60 * day, 67 * day} {
		for _, d := range []string{"primary", "offsite"} {
			if it := got[key{d, ids[age]}]; it.Outcome != "deleted" {
				t.Errorf("expired %s on %s: %+v, want deleted", ids[age], d, it)
			}
		}
	}
	for d, s := range stores {
		k := backuptest.Keys(t, s)
		for _, id := range []string{ids[40*day], ids[47*day], intruder} {
			if id == intruder && d == "offsite" {
				continue
			}
			if !slices.Contains(k, manifest.Key("app", id)) {
				t.Errorf("%s lost the manifest of %s", d, id)
			}
		}
	}
}
