package prune_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/lease"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

const day = 24 * time.Hour

// now is the clock every prune in this file runs at: this machine's (prune
// checks it against each destination's own clock), to the second, so that
// a backup exactly keep_within old stays exactly that old.
var now = time.Now().UTC().Truncate(time.Second)

// defaultPolicy is the policy a job gets when its config says nothing.
var defaultPolicy = retention.Policy{KeepWithin: 28 * day, MinKeep: 2, Location: time.UTC}

// putBackup stores a complete backup of job taken at t, a payload and a
// valid manifest listing its copies, on each of the named destinations,
// and returns its id.
func putBackup(t *testing.T, dests map[string]storage.Store, job string, at time.Time, on ...string) string {
	t.Helper()
	m := backuptest.Fake(t, job, manifest.NewID(at), nil, on...)
	for _, d := range on {
		backuptest.Put(t, testSigner, m, nil, dests[d])
	}
	return m.ID
}

// twoBuckets returns fresh buckets on the primary and offsite MinIO servers
// as the job's two destinations.
func twoBuckets(t *testing.T) ([]storage.Destination, map[string]storage.Store) {
	t.Helper()
	p, o := s3test.NewBucket(t, "primary"), s3test.NewBucket(t, "offsite")
	return []storage.Destination{{Name: "primary", Store: p}, {Name: "offsite", Store: o}},
		map[string]storage.Store{"primary": p, "offsite": o}
}

// at says what the plan should decide for one backup on each destination;
// "" means the backup is not on that destination.
type at struct {
	age              time.Duration
	primary, offsite retention.Rule
}

// where is one backup on one destination.
type where struct{ dest, id string }

// TestRunDeletesExpiredObjects fabricates histories on two real buckets and
// prunes them with the default policy (28d, min_keep 2): exactly the
// expired backups go, manifest and payload, from the destination they
// expired on; a dry run first shows the same plan and deletes nothing.
func TestRunDeletesExpiredObjects(t *testing.T) {
	const (
		newest  = retention.RuleNewest
		within  = retention.RuleWithin
		minKeep = retention.RuleMinKeep
		only    = retention.RuleOnlyCopy
		expired = retention.RuleExpired
	)
	cases := []struct {
		name    string
		history []at
	}{
		{"weekly for 10 weeks on both", []at{
			{0, newest, newest}, {7 * day, within, within}, {14 * day, within, within}, {21 * day, within, within},
			{28 * day, within, within}, // exactly keep_within old: kept
			{35 * day, expired, expired}, {42 * day, expired, expired}, {49 * day, expired, expired},
			{56 * day, expired, expired}, {63 * day, expired, expired},
		}},
		{"two old backups only on the primary", []at{
			{2 * day, newest, newest}, {9 * day, within, within}, {16 * day, within, within},
			{40 * day, only, ""}, {47 * day, only, ""},
			{60 * day, expired, expired}, {67 * day, expired, expired},
		}},
		{"gap of several weeks", []at{
			{1 * day, newest, newest}, {8 * day, within, within},
			{43 * day, expired, expired}, {50 * day, expired, expired}, {57 * day, expired, expired},
		}},
		{"nothing in the last 5 weeks", []at{
			{36 * day, newest, newest}, {43 * day, minKeep, minKeep},
			{50 * day, expired, expired}, {57 * day, expired, expired}, {64 * day, expired, expired},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dests, stores := twoBuckets(t)
			want := map[where]retention.Rule{}
			for _, b := range c.history {
				var on []string
				if b.primary != "" {
					on = append(on, "primary")
				}
				if b.offsite != "" {
					on = append(on, "offsite")
				}
				id := putBackup(t, stores, "app", now.Add(-b.age), on...)
				if b.primary != "" {
					want[where{"primary", id}] = b.primary
				}
				if b.offsite != "" {
					want[where{"offsite", id}] = b.offsite
				}
			}
			before := map[string][]string{"primary": backuptest.Keys(t, stores["primary"]), "offsite": backuptest.Keys(t, stores["offsite"])}
			var called []prune.Item
			onDelete := func(it prune.Item) { called = append(called, it) }

			dry, err := prune.Run(ctx, prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now, DryRun: true, OnDelete: onDelete}}, zaptest.NewLogger(t))
			if err != nil || len(dry.Refused) > 0 {
				t.Fatalf("dry run: err %v, refused %v", err, dry.Refused)
			}
			for name, s := range stores {
				if got := backuptest.Keys(t, s); !slices.Equal(got, before[name]) {
					t.Fatalf("dry run changed %s:\n got %v\nwant %v", name, got, before[name])
				}
			}
			if len(called) > 0 {
				t.Fatalf("dry run reported deletions: %+v", called)
			}
			checkPlan(t, dry, want, "would delete")

			res, err := prune.Run(ctx, prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now, OnDelete: onDelete}}, zaptest.NewLogger(t))
			if err != nil || len(res.Refused) > 0 {
				t.Fatalf("prune: err %v, refused %v", err, res.Refused)
			}
			checkPlan(t, res, want, "deleted")
			if !slices.EqualFunc(dry.Items, res.Items, samePlan) {
				t.Errorf("the dry run's plan differs from the real run's:\n dry %+v\nreal %+v", dry.Items, res.Items)
			}
			var deleted []prune.Item
			for _, it := range res.Items {
				if it.Outcome == "deleted" {
					deleted = append(deleted, it)
					if it.Removed != 2 {
						t.Errorf("%s on %s: removed %d objects, want 2 (manifest and payload)", it.ID, it.Destination, it.Removed)
					}
				}
			}
			if !slices.EqualFunc(called, deleted, func(a, b prune.Item) bool { return a.Destination == b.Destination && a.ID == b.ID }) {
				t.Errorf("onDelete saw %+v, want every deleted backup once: %+v", called, deleted)
			}

			// What the buckets hold: both objects of every kept backup,
			// nothing of a deleted one.
			for name, s := range stores {
				var wantKeys []string
				for w, rule := range want {
					if w.dest == name && rule != expired {
						wantKeys = append(wantKeys, manifest.Key("app", w.id), manifest.PayloadKey("app", w.id, "sqlite"))
					}
				}
				slices.Sort(wantKeys)
				if got := backuptest.Keys(t, s); !slices.Equal(got, wantKeys) {
					t.Errorf("%s after prune holds\n %v\nwant\n %v", name, got, wantKeys)
				}
			}
		})
	}
}

// checkPlan checks that res decides exactly the backups in want, each with
// the wanted rule, and that expired ones have outcome deleteOutcome.
func checkPlan(t *testing.T, res *prune.Result, want map[where]retention.Rule, deleteOutcome prune.Outcome) {
	t.Helper()
	got := map[where]retention.Rule{}
	for _, it := range res.Items {
		w := where{it.Destination, it.ID}
		if _, dup := got[w]; dup {
			t.Errorf("%s on %s decided twice", it.ID, it.Destination)
		}
		got[w] = it.Rule
		expired := want[w] == retention.RuleExpired
		wantOutcome := prune.Outcome("kept")
		if expired {
			wantOutcome = deleteOutcome
		}
		if it.Keep == expired || it.Outcome != wantOutcome || it.Error != "" {
			t.Errorf("%s on %s (%s): keep %v, outcome %q, error %q; want keep %v, outcome %q",
				it.ID, it.Destination, it.Rule, it.Keep, it.Outcome, it.Error, !expired, wantOutcome)
		}
		if it.Reason == "" {
			t.Errorf("%s on %s: no reason given", it.ID, it.Destination)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("plan (destination, id) -> rule:\n got %v\nwant %v", got, want)
	}
	n := 0
	for _, r := range want {
		if r == retention.RuleExpired {
			n++
		}
	}
	if res.Deleted("") != n {
		t.Errorf("Deleted() = %d, want %d", res.Deleted(""), n)
	}
}

// samePlan reports whether a and b decide the same backup the same way,
// "would delete" in a dry run matching "deleted".
func samePlan(a, b prune.Item) bool {
	outcome := func(o prune.Outcome) prune.Outcome {
		if o == prune.OutcomeWouldDelete {
			return prune.OutcomeDeleted
		}
		return o
	}
	return a.Destination == b.Destination && a.ID == b.ID && a.Time.Equal(b.Time) && a.Keep == b.Keep &&
		a.Rule == b.Rule && a.Reason == b.Reason && outcome(a.Outcome) == outcome(b.Outcome)
}

// TestRunRefusesFutureClock: when the newest backup is dated an hour after
// now (this host's clock is behind), nothing is deleted anywhere, even
// backups that would be long expired, and both destinations are reported
// refused.
func TestRunRefusesFutureClock(t *testing.T) {
	t.Parallel()
	dests, stores := twoBuckets(t)
	for _, age := range []time.Duration{-time.Hour, 40 * day, 47 * day, 54 * day} {
		putBackup(t, stores, "app", now.Add(-age), "primary", "offsite")
	}
	before := map[string][]string{"primary": backuptest.Keys(t, stores["primary"]), "offsite": backuptest.Keys(t, stores["offsite"])}
	deletions := 0
	res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now, OnDelete: func(prune.Item) { deletions++ }}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"primary", "offsite"} {
		if why := res.Refused[name]; !strings.Contains(why, "future") {
			t.Errorf("Refused[%s] = %q, want a refusal naming the future-dated backup", name, why)
		}
		if got := backuptest.Keys(t, stores[name]); !slices.Equal(got, before[name]) {
			t.Errorf("%s changed although the clock looks wrong:\n got %v\nwant %v", name, got, before[name])
		}
	}
	if len(res.Items) > 0 || deletions > 0 || res.Deleted("") > 0 {
		t.Errorf("items %+v, %d deletions reported; want none", res.Items, deletions)
	}
}

// rawClient is an S3 client for srv, to do what a Store cannot (start
// multipart uploads, list object versions).
func rawClient(srv testenv.S3Server) *awss3.Client {
	return awss3.New(awss3.Options{
		BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
}

// versions lists every version and delete marker under prefix in bucket.
func versions(t *testing.T, client *awss3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := client.ListObjectVersions(t.Context(), &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, v := range out.Versions {
		vs = append(vs, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
	}
	for _, m := range out.DeleteMarkers {
		vs = append(vs, aws.ToString(m.Key)+"@"+aws.ToString(m.VersionId)+" (delete marker)")
	}
	return vs
}

// TestRunDisposesEveryVersion: on a versioned bucket, a pruned backup
// leaves no old version behind (secure disposal), not just a delete
// marker over recoverable data.
func TestRunDisposesEveryVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var bucketName string
	primary := s3test.NewBucket(t, "primary", func(o *s3.Options) { bucketName = o.Bucket })
	if err := primary.EnsureBucketWith(ctx, s3.BucketOptions{Versioning: true}); err != nil {
		t.Fatal(err)
	}
	stores := map[string]storage.Store{"primary": primary, "offsite": s3test.NewBucket(t, "offsite")}
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: stores["offsite"]}}
	putBackup(t, stores, "app", now.Add(-day), "primary", "offsite")
	putBackup(t, stores, "app", now.Add(-8*day), "primary", "offsite")
	old := putBackup(t, stores, "app", now.Add(-40*day), "primary", "offsite")
	// A rewritten payload: two versions of the same key.
	payload := manifest.PayloadKey("app", old, "sqlite")
	if _, err := primary.Put(ctx, payload, bytes.NewReader(backuptest.FakePayload("app", old))); err != nil {
		t.Fatal(err)
	}
	client := rawClient(testenv.S3(t, "primary"))
	if vs := versions(t, client, bucketName, manifest.Dir("app", old)); len(vs) != 3 {
		t.Fatalf("setup: versions %v, want 3 (manifest, payload twice)", vs)
	}

	res, err := prune.Run(ctx, prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now}}, zaptest.NewLogger(t))
	if err != nil || len(res.Refused) > 0 {
		t.Fatalf("prune: err %v, refused %v", err, res.Refused)
	}
	for _, it := range res.Items {
		if it.Destination == "primary" && it.ID == old && (it.Outcome != "deleted" || it.Removed != 3) {
			t.Errorf("%s on primary: outcome %q, removed %d; want deleted, 3 versions removed", old, it.Outcome, it.Removed)
		}
	}
	if vs := versions(t, client, bucketName, manifest.Dir("app", old)); len(vs) > 0 {
		t.Errorf("after prune the bucket still holds %v", vs)
	}
}

// TestPurge: purging a job from a bucket removes every object of it (its
// backups, an orphan payload without manifest, an unfinished upload, its
// backup and drill leases and drill report) and nothing of another job
// whose name starts the same, nor the audit trail, nor the job's copies on
// another destination.
func TestPurge(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := testenv.S3(t, "primary")
	var bucketName string
	primary := s3test.NewBucket(t, "primary", func(o *s3.Options) { bucketName = o.Bucket })
	offsite := s3test.NewBucket(t, "offsite")
	stores := map[string]storage.Store{"primary": primary, "offsite": offsite}

	put := func(s storage.Store, key, data string) {
		t.Helper()
		if _, err := s.Put(ctx, key, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, age := range []time.Duration{day, 8 * day} {
		putBackup(t, stores, "app", now.Add(-age), "primary", "offsite")
	}
	put(primary, manifest.PayloadKey("app", manifest.NewID(now), "sqlite"), "orphan of an interrupted backup")
	put(primary, lease.Key("app"), `{"holder":"host-a","job":"app"}`)
	put(primary, lease.DrillKey("app"), `{"holder":"host-a","job":"app"}`)
	put(primary, "_coffer/drills/app/20261120T030000.000Z-0001.json", `{"job":"app"}`)

	// Another tenant in the same bucket, whose name starts like app's.
	putBackup(t, stores, "app-eu", now.Add(-day), "primary")
	put(primary, lease.Key("app-eu"), `{"holder":"host-b","job":"app-eu"}`)
	put(primary, lease.DrillKey("app-eu"), `{"holder":"host-b","job":"app-eu"}`)
	put(primary, "_coffer/drills/app-eu/20261120T030000.000Z-0002.json", `{"job":"app-eu"}`)
	put(primary, "_coffer/audit/host-a/20261120T030000.000000000Z-01.jsonl", `{"action":"backup"}`)

	// Unfinished uploads, as a killed backup leaves them.
	client := rawClient(srv)
	for _, job := range []string{"app", "app-eu"} {
		key := manifest.PayloadKey(job, manifest.NewID(now), "sqlite")
		if _, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}

	var otherKeys []string
	for _, k := range backuptest.Keys(t, primary) {
		if !strings.HasPrefix(k, "app/") && k != lease.Key("app") && k != lease.DrillKey("app") && !strings.HasPrefix(k, "_coffer/drills/app/") {
			otherKeys = append(otherKeys, k)
		}
	}
	if len(otherKeys) != 6 {
		t.Fatalf("setup: other keys %v, want app-eu's 5 and the audit object", otherKeys)
	}
	offsiteBefore := backuptest.Keys(t, offsite)

	res := prune.Purge(ctx, "app", storage.Destination{Name: "primary", Store: primary}, zaptest.NewLogger(t))
	if res.Error != "" || len(res.Locked) > 0 {
		t.Fatalf("purge: error %q, locked %v", res.Error, res.Locked)
	}
	// 2 backups x (manifest + payload), the orphan, both leases, the drill.
	if res.Destination != "primary" || res.Backups != 2 || res.Objects != 8 || res.Aborted != 1 {
		t.Errorf("purge result %+v, want primary: 2 backups, 8 objects, 1 upload aborted", res)
	}
	if got := backuptest.Keys(t, primary); !slices.Equal(got, otherKeys) {
		t.Errorf("primary after purge holds\n %v\nwant only what is not app's\n %v", got, otherKeys)
	}
	uploads, err := primary.ListMultipartUploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads) != 1 || !strings.HasPrefix(uploads[0], "app-eu/") {
		t.Errorf("unfinished uploads after purge: %v, want only app-eu's", uploads)
	}
	if got := backuptest.Keys(t, offsite); !slices.Equal(got, offsiteBefore) {
		t.Errorf("purging primary changed offsite:\n got %v\nwant %v", got, offsiteBefore)
	}
}

// faulty is a real bucket whose Dispose fails for keys containing
// failDispose and whose List fails when failList is set.
type faulty struct {
	*s3.Store
	failDispose string
	failList    bool
}

var errInjected = errors.New("injected fault")

func (f faulty) Dispose(ctx context.Context, key string) (int, error) {
	if f.failDispose != "" && strings.Contains(key, f.failDispose) {
		return 0, errInjected
	}
	return f.Store.Dispose(ctx, key)
}

func (f faulty) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	if f.failList {
		return func(yield func(storage.ObjectInfo, error) bool) { yield(storage.ObjectInfo{}, errInjected) }
	}
	return f.Store.List(ctx, prefix)
}

// TestRunInterruptedDeleteLeavesNoDanglingManifest: when a payload cannot
// be deleted, the backup is reported failed and its manifest is already
// gone, so no manifest points at a half-deleted backup; the payload stays
// as an orphan for the sweeper.
func TestRunInterruptedDeleteLeavesNoDanglingManifest(t *testing.T) {
	t.Parallel()
	_, stores := twoBuckets(t)
	putBackup(t, stores, "app", now.Add(-day), "primary", "offsite")
	putBackup(t, stores, "app", now.Add(-8*day), "primary", "offsite")
	old := putBackup(t, stores, "app", now.Add(-40*day), "primary", "offsite")
	putBackup(t, stores, "app", now.Add(-47*day), "primary", "offsite")
	primary := faulty{Store: stores["primary"].(*s3.Store), failDispose: old + "/payload."}
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: stores["offsite"]}}

	var reported []string
	onDelete := func(it prune.Item) { reported = append(reported, it.Destination+" "+it.ID+" "+string(it.Outcome)) }
	res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now, OnDelete: onDelete}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(reported, "primary "+old+" failed") {
		t.Errorf("onDelete (the audit trail) saw %v, want the failed deletion of %s on primary", reported, old)
	}
	for _, it := range res.Items {
		if it.Destination == "primary" && it.ID == old && (it.Outcome != "failed" || !strings.Contains(it.Error, "injected")) {
			t.Errorf("%s on primary: outcome %q, error %q; want failed with the cause", old, it.Outcome, it.Error)
		}
	}
	got := backuptest.Keys(t, stores["primary"])
	if slices.Contains(got, manifest.Key("app", old)) || !slices.Contains(got, manifest.PayloadKey("app", old, "sqlite")) {
		t.Errorf("primary holds %v; want %s's manifest gone and its payload left as an orphan", got, old)
	}
	if slices.ContainsFunc(backuptest.Keys(t, stores["offsite"]), func(k string) bool { return strings.Contains(k, old) }) {
		t.Errorf("offsite still holds %s although only primary failed", old)
	}
}

// TestRunUnreachableDestinationKeepsMore: when offsite cannot be listed,
// it is reported refused and counts as holding nothing, so the primary's
// expired backups become only copies and are kept.
func TestRunUnreachableDestinationKeepsMore(t *testing.T) {
	t.Parallel()
	_, stores := twoBuckets(t)
	for _, age := range []time.Duration{day, 8 * day, 40 * day, 47 * day} {
		putBackup(t, stores, "app", now.Add(-age), "primary", "offsite")
	}
	offsite := faulty{Store: stores["offsite"].(*s3.Store), failList: true}
	dests := []storage.Destination{{Name: "primary", Store: stores["primary"]}, {Name: "offsite", Store: offsite}}
	before := backuptest.Keys(t, stores["primary"])

	res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: now}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Refused["offsite"], "injected") {
		t.Errorf("Refused = %v, want offsite refused with the cause", res.Refused)
	}
	if got := backuptest.Keys(t, stores["primary"]); !slices.Equal(got, before) || res.Deleted("") != 0 {
		t.Errorf("primary after prune holds %v (%d deleted); want all of %v kept", got, res.Deleted(""), before)
	}
	only := 0
	for _, it := range res.Items {
		if it.Destination != "primary" {
			t.Errorf("%s decided on unreachable %s", it.ID, it.Destination)
		}
		if it.Time.Before(now.Add(-28 * day)) {
			only++
			if it.Rule != retention.RuleOnlyCopy {
				t.Errorf("%s: rule %s, want only_copy", it.ID, it.Rule)
			}
		}
	}
	if only != 2 {
		t.Errorf("%d old backups decided on primary, want 2: %+v", only, res.Items)
	}
}
