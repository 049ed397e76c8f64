package report

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/s3"
)

// bucketDest creates a fresh bucket on the shared MinIO server which and
// returns its store and a configuration destination named name that
// opens the same bucket.
func bucketDest(t *testing.T, which, name string) (*s3.Store, *config.Destination) {
	t.Helper()
	var opts s3.Options
	st := s3test.NewBucket(t, which, func(o *s3.Options) { opts = *o })
	return st, &config.Destination{
		Name: name, Type: "s3", Endpoint: opts.Endpoint, Region: opts.Region, Bucket: opts.Bucket,
		PathStyle: true, AccessKeyID: opts.AccessKeyID, SecretAccessKey: config.NewSecret(opts.SecretAccessKey),
		InsecureHTTP: true,
	}
}

// testConfig is a configuration holding job and dests.
func testConfig(job *config.Job, dests ...*config.Destination) *config.Config {
	cfg := &config.Config{Destinations: map[string]*config.Destination{}, Jobs: map[string]*config.Job{job.Name: job}, JobOrder: []string{job.Name}}
	for _, d := range dests {
		cfg.Destinations[d.Name] = d
		cfg.DestinationOrder = append(cfg.DestinationOrder, d.Name)
	}
	return cfg
}

// putBackup stores m's payload (size bytes) and m, signed by signer, on s.
func putBackup(t *testing.T, s storage.Store, m *manifest.Manifest, size int, signer *sign.Signer) {
	t.Helper()
	backuptest.Put(t, signer, m, make([]byte, size), s)
}

// writeTrail records evs in an audit log in dir, ships it to s with heads
// signed by signer (when s is not nil), and returns the log's path.
func writeTrail(t *testing.T, dir string, s storage.Store, signer *sign.Signer, evs ...audit.Event) string {
	t.Helper()
	l, err := audit.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, ev := range evs {
		if err := l.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if s != nil {
		l.SetSigner(signer)
		if _, err := l.Ship(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	return l.Path()
}

// TestGather reads a job's history from two real MinIO buckets, a local
// audit log and the primary's shipped audit trail: good, truncated and
// foreign-signed backups, drill reports good and bad. Evaluate then fails
// the encryption control for exactly the two bad backups, with their
// errors, and passes the drill control on the drill read from offsite.
func TestGather(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pst, pdest := bucketDest(t, "primary", "primary")
	ost, odest := bucketDest(t, "offsite", "offsite")
	odest.ObjectLock = &config.ObjectLock{Mode: "governance"}
	job := testJob()
	cfg := testConfig(job, pdest, odest)
	signer, stranger := signtest.SeededSigner(1), signtest.SeededSigner(2)
	both := []string{"primary", "offsite"}

	good := newManifest("app", sunday(4, 12), both, keyA)
	short := newManifest("app", sunday(4, 5), both, keyA)
	foreign := newManifest("app", sunday(3, 29), both, keyA)
	putBackup(t, pst, good, 400, signer)
	putBackup(t, ost, good, 400, signer)
	putBackup(t, pst, short, 400, signer)
	putBackup(t, ost, short, 399, signer) // truncated on offsite
	putBackup(t, pst, foreign, 400, stranger)
	putBackup(t, ost, foreign, 400, signer)

	passed := newDrill("app", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Passed)
	if err := drill.WriteReport(ctx, ost, passed, signer); err != nil {
		t.Fatal(err)
	}
	unsigned := newDrill("app", time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Passed)
	if err := drill.WriteReport(ctx, ost, unsigned, nil); err != nil {
		t.Fatal(err)
	}
	unsignedKey := drill.ReportKey("app", unsigned.ID)
	badKey := drill.ReportKey("app", "20260301T040000.000Z-0bad")
	if _, err := ost.Put(ctx, badKey, strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}

	// The local log has this week's backups; the primary's shipped trail
	// has an older backup and its prune, an event of another job, and a
	// duplicate of a local event.
	local := []audit.Event{
		event(sunday(4, 12).Add(5*time.Minute), audit.ActionBackup, good.ID, "primary", audit.OutcomeOK, ""),
		event(sunday(4, 12).Add(5*time.Minute), audit.ActionBackup, good.ID, "offsite", audit.OutcomeOK, ""),
	}
	other := event(sunday(3, 1), audit.ActionBackup, backupID(sunday(3, 1)), "primary", audit.OutcomeOK, "")
	other.Job = "web"
	// The job's first event, a failed backup long before the window, is
	// not among the events read for the window, but it tells when the
	// job's protection began.
	firstEvent := event(time.Date(2025, 6, 1, 2, 5, 0, 0, time.UTC), audit.ActionBackup, "", "", audit.OutcomeFailed, "")
	shipped := []audit.Event{
		firstEvent,
		event(sunday(2, 15).Add(5*time.Minute), audit.ActionBackup, backupID(sunday(2, 15)), "primary", audit.OutcomeOK, ""),
		event(sunday(3, 22).Add(10*time.Minute), audit.ActionPrune, backupID(sunday(2, 15)), "primary", "deleted", "expired"),
		other,
	}
	// Real, chained logs with signed heads: another host's log shipped,
	// and this host's log shipped too (a byte-identical copy of local[0]
	// and local[1] in the bucket).
	writeTrail(t, t.TempDir(), pst, signer, shipped...)
	logPath := writeTrail(t, t.TempDir(), pst, signer, local...)

	in, err := Gather(ctx, cfg, []*config.Job{job}, Options{
		Now: now, Since: window, AuditLog: logPath,
		Trust: signtest.Trust(signer),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Jobs) != 1 || len(in.Jobs[0].Destinations) != 2 {
		t.Fatalf("Gather returned %+v, want one job with two destinations", in)
	}
	ji := in.Jobs[0]
	p, o := ji.Destinations[0], ji.Destinations[1]
	if p.Name != "primary" || p.Role != RolePrimary || p.ObjectLock != "" || o.Name != "offsite" || o.Role != RoleOffsite || o.ObjectLock != "governance" {
		t.Errorf("destinations: %s/%s/%q and %s/%s/%q, want primary/primary/\"\" and offsite/offsite/governance",
			p.Name, p.Role, p.ObjectLock, o.Name, o.Role, o.ObjectLock)
	}
	ids := func(ms []*manifest.Manifest) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	if got, want := ids(p.Manifests), []string{short.ID, good.ID}; !slices.Equal(got, want) || p.Err != nil {
		t.Errorf("primary manifests %v (error %v), want %v", got, p.Err, want)
	}
	if got, want := ids(o.Manifests), []string{foreign.ID, good.ID}; !slices.Equal(got, want) || o.Err != nil {
		t.Errorf("offsite manifests %v (error %v), want %v", got, o.Err, want)
	}
	if len(p.Bad) != 1 || p.Bad[0].ID != foreign.ID || !errors.Is(p.Bad[0].Err, sign.ErrUnknownKey) {
		t.Errorf("primary bad backups %+v, want %s refused for its unknown signing key", p.Bad, foreign.ID)
	}
	if len(o.Bad) != 1 || o.Bad[0].ID != short.ID || !strings.Contains(o.Bad[0].Err.Error(), "is 399 bytes, the manifest says 400") {
		t.Errorf("offsite bad backups %+v, want %s with a 399-byte payload", o.Bad, short.ID)
	}
	var evIDs []string
	for _, ev := range ji.Events {
		if ev.Job != "app" {
			t.Errorf("event of job %s given to job app: %+v", ev.Job, ev)
		}
		evIDs = append(evIDs, ev.ID)
	}
	if len(ji.Events) != 4 || !slices.IsSortedFunc(ji.Events, func(a, b audit.Event) int { return a.Time.Compare(b.Time) }) {
		t.Errorf("events %v, want the 4 of job app (local and shipped, each once) in time order", evIDs)
	}
	if len(ji.AuditErrors) != 0 {
		t.Errorf("audit errors: %v", ji.AuditErrors)
	}
	if !ji.FirstEvent.Equal(firstEvent.Time) {
		t.Errorf("first event of job app %s, want %s (from before the window)", ji.FirstEvent, firstEvent.Time)
	}
	if ji.DrillErr != nil || len(ji.Drills) != 1 || ji.Drills[0].ID != passed.ID || ji.BadDrills[badKey] == nil ||
		ji.BadDrills[unsignedKey] == nil || len(ji.UnverifiedDrills) != 0 {
		t.Errorf("drills %+v, bad %v, unverified %v, error %v: want %s read, %s and the unsigned %s refused",
			ji.Drills, ji.BadDrills, ji.UnverifiedDrills, ji.DrillErr, passed.ID, badKey, unsignedKey)
	}

	r := Evaluate(in)
	jr := &r.Jobs[0]
	enc := jr.Control(ControlEncryption)
	if enc.Status != Fail || !containsLine(enc.Evidence, "primary: backup "+foreign.ID+": manifest does not check out") ||
		!containsLine(enc.Evidence, "offsite: backup "+short.ID+": manifest does not check out: payload app/"+short.ID+"/payload.sqlite.zst.age is 399 bytes, the manifest says 400") {
		t.Errorf("encryption control %s: %s\n  %s", enc.Status, enc.Summary, strings.Join(enc.Evidence, "\n  "))
	}
	if d := jr.Control(ControlDrill); d.Status != Warn || !containsLine(d.Evidence, "drill report "+badKey+" in offsite could not be read") {
		t.Errorf("drill control %s: %s\n  %s", d.Status, d.Summary, strings.Join(d.Evidence, "\n  "))
	}
	if jr.ProtectedSince != "2025-06-01" || jr.ProtectedSinceSource != ProtectedByEvent {
		t.Errorf("protected since %s (%s), want 2025-06-01 (%s)", jr.ProtectedSince, jr.ProtectedSinceSource, ProtectedByEvent)
	}
	// 2026-W07 in primary rests on the shipped trail: its backup was
	// pruned since.
	for _, w := range jr.Coverage[0].Weeks {
		if w.Week == "2026-W07" && (w.Status != WeekCovered || w.Source != SourceAuditPruned) {
			t.Errorf("primary 2026-W07 = %+v, want covered by the audit trail (pruned since)", w)
		}
	}
}

// TestGatherUnreachable gives a job an offsite destination nobody
// listens on: every control that needs it fails with the error, and the
// drill control fails because its source is that destination.
func TestGatherUnreachable(t *testing.T) {
	t.Parallel()
	_, pdest := bucketDest(t, "primary", "primary")
	dead := &config.Destination{Name: "offsite", Type: "s3", Endpoint: "http://127.0.0.1:1", Region: "us-east-1",
		Bucket: "nowhere", PathStyle: true, AccessKeyID: "x", SecretAccessKey: config.NewSecret("y"), InsecureHTTP: true}
	job := testJob()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	in, err := Gather(ctx, testConfig(job, pdest, dead), []*config.Job{job}, Options{Now: now, Since: window})
	if err != nil {
		t.Fatal(err)
	}
	if in.Jobs[0].Destinations[1].Err == nil || in.Jobs[0].DrillErr == nil {
		t.Fatalf("unreachable offsite: destination error %v, drill error %v; want both set", in.Jobs[0].Destinations[1].Err, in.Jobs[0].DrillErr)
	}
	r := Evaluate(in)
	if r.Passed() {
		t.Error("a report with an unreachable destination passed")
	}
	for _, id := range []string{ControlWeekly, ControlRetention, ControlEncryption} {
		c := r.Jobs[0].Control(id)
		if c.Status != Fail || !containsLine(c.Evidence, "offsite: could not be read: ") {
			t.Errorf("control %s: %s, evidence:\n  %s", id, c.Status, strings.Join(c.Evidence, "\n  "))
		}
	}
	if c := r.Jobs[0].Control(ControlDrill); c.Status != Fail || !containsLine(c.Evidence, "drill source offsite could not be read: ") {
		t.Errorf("drill control: %s, evidence:\n  %s", c.Status, strings.Join(c.Evidence, "\n  "))
	}
}

// containsLine reports whether a line of lines contains s.
func containsLine(lines []string, s string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, s) })
}

// TestGatherSkipSignature reads backups and drill reports whose signature
// is missing or made by an unknown key with signatures skipped: they
// count, and the report warns about each.
func TestGatherSkipSignature(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pst, pdest := bucketDest(t, "primary", "primary")
	ost, odest := bucketDest(t, "offsite", "offsite")
	job := testJob()
	signer, stranger := signtest.SeededSigner(1), signtest.SeededSigner(2)
	m := newManifest("app", sunday(4, 12), []string{"primary", "offsite"}, keyA)
	putBackup(t, pst, m, 400, stranger)
	putBackup(t, ost, m, 400, signer)
	d := newDrill("app", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Passed)
	if err := drill.WriteReport(ctx, ost, d, nil); err != nil {
		t.Fatal(err)
	}
	var warned []string
	in, err := Gather(ctx, testConfig(job, pdest, odest), []*config.Job{job}, Options{Now: now, Since: window,
		Trust: manifest.Trust{Verifier: sign.NewVerifier(signer.Public()), SkipSignature: true,
			Warn: func(object string, _ error) { warned = append(warned, object) }}})
	if err != nil {
		t.Fatal(err)
	}
	ji := in.Jobs[0]
	p, o := ji.Destinations[0], ji.Destinations[1]
	if len(p.Manifests) != 1 || len(p.Unverified) != 1 || p.Unverified[0].ID != m.ID || !errors.Is(p.Unverified[0].Err, sign.ErrUnknownKey) {
		t.Errorf("primary: manifests %d, unverified %+v; want %s read but unverified (unknown key)", len(p.Manifests), p.Unverified, m.ID)
	}
	if len(o.Manifests) != 1 || len(o.Unverified) != 0 {
		t.Errorf("offsite: manifests %d, unverified %+v; want %s read and verified", len(o.Manifests), o.Unverified, m.ID)
	}
	if len(ji.Drills) != 1 || len(ji.UnverifiedDrills) != 1 {
		t.Errorf("drills %+v, unverified %v: want the unsigned drill read, and unverified", ji.Drills, ji.UnverifiedDrills)
	}
	if len(warned) != 2 {
		t.Errorf("the caller's Warn saw %v, want the primary's manifest and the drill report", warned)
	}
	r := Evaluate(in)
	enc, dr := r.Jobs[0].Control(ControlEncryption), r.Jobs[0].Control(ControlDrill)
	if enc.Status != Warn || !containsLine(enc.Evidence, "primary: backup "+m.ID+": signature not verified: ") {
		t.Errorf("encryption control %s:\n  %s", enc.Status, strings.Join(enc.Evidence, "\n  "))
	}
	if dr.Status != Warn || !containsLine(dr.Evidence, "drill report "+drill.ReportKey("app", d.ID)+" on ") ||
		!containsLine(dr.Evidence, ": signature not verified: not signed") {
		t.Errorf("drill control %s:\n  %s", dr.Status, strings.Join(dr.Evidence, "\n  "))
	}
}

// TestGatherUnprovenAuditEvidence: a week known only from the audit trail
// (its backup pruned since) is covered while the trail's chain and signed
// heads verify, and unproven, failing the weekly control, once an event
// of the shipped trail or of the local log is edited. Local directory
// destinations: the same files an operator has.
func TestGatherUnprovenAuditEvidence(t *testing.T) {
	signer := signtest.SeededSigner(1)
	id := backupID(sunday(2, 15))
	evs := []audit.Event{
		event(sunday(2, 15).Add(5*time.Minute), audit.ActionBackup, id, "offsite", audit.OutcomeOK, ""),
		event(sunday(3, 22).Add(10*time.Minute), audit.ActionPrune, id, "offsite", "deleted", "expired"),
	}
	setup := func(t *testing.T) (*config.Config, string, storage.Store) {
		pdir, odir := t.TempDir(), t.TempDir()
		cfg := testConfig(testJob(),
			&config.Destination{Name: "primary", Type: "local", Path: pdir},
			&config.Destination{Name: "offsite", Type: "local", Path: odir})
		st, err := fs.New(pdir)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, writeTrail(t, t.TempDir(), st, signer, evs...), st
	}
	week := func(t *testing.T, cfg *config.Config, logPath string) (Week, *Control) {
		t.Helper()
		in, err := Gather(t.Context(), cfg, []*config.Job{cfg.Jobs["app"]}, Options{
			Now: now, Since: window, AuditLog: logPath, Trust: signtest.Trust(signer)})
		if err != nil {
			t.Fatal(err)
		}
		jr := Evaluate(in).Jobs[0]
		for _, w := range jr.Coverage[1].Weeks {
			if w.Week == "2026-W07" {
				return w, jr.Control(ControlWeekly)
			}
		}
		t.Fatal("no week 2026-W07 in offsite's timeline")
		return Week{}, nil
	}
	edit := func(t *testing.T, data []byte) []byte {
		t.Helper()
		out := bytes.Replace(data, []byte(`"rule":"expired"`), []byte(`"rule":"expird"`), 1)
		if bytes.Equal(out, data) {
			t.Fatal("nothing edited")
		}
		return out
	}

	t.Run("intact", func(t *testing.T) {
		cfg, logPath, _ := setup(t)
		w, _ := week(t, cfg, logPath)
		if w.Status != WeekCovered || w.Audited != 1 || w.Source != SourceAuditPruned {
			t.Errorf("week %+v, want covered by the audit trail (pruned since)", w)
		}
	})
	t.Run("shipped object edited", func(t *testing.T) {
		cfg, _, st := setup(t)
		for obj, err := range st.List(t.Context(), audit.Prefix) {
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(obj.Key, ".jsonl") {
				continue
			}
			rc, err := st.Get(t.Context(), obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.ReadFrom(rc)
			rc.Close()
			if _, err := st.Put(t.Context(), obj.Key, bytes.NewReader(edit(t, b.Bytes()))); err != nil {
				t.Fatal(err)
			}
		}
		// The bucket alone: no local log to fall back on.
		w, c := week(t, cfg, "")
		if w.Status != WeekUnproven || w.Unproven != 1 || w.Audited != 0 {
			t.Errorf("week %+v, want unproven", w)
		}
		if c.Status != Fail || !slices.ContainsFunc(c.Evidence, func(e string) bool { return strings.Contains(e, "unproven") && strings.Contains(e, "2026-W07") }) {
			t.Errorf("weekly control %s, evidence %q; want a failure naming 2026-W07 unproven", c.Status, c.Evidence)
		}
	})
	t.Run("local log edited", func(t *testing.T) {
		cfg, logPath, st := setup(t)
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		// Edit the first event: the second one no longer links to it.
		edited := bytes.Replace(data, []byte(`"user":"coffer"`), []byte(`"user":"admin"`), 1)
		if err := os.WriteFile(logPath, edited, 0o600); err != nil {
			t.Fatal(err)
		}
		// The shipped, signed copy still proves the week: its prune
		// event is intact (the local copy of the backup event, which
		// differs from the shipped one, proves nothing).
		w, _ := week(t, cfg, logPath)
		if w.Status != WeekCovered || w.Source != SourceAuditPruned {
			t.Errorf("week %+v, want covered by the shipped trail", w)
		}
		// Without the shipped copy, the broken local chain proves nothing.
		var keys []string
		for obj, err := range st.List(t.Context(), audit.Prefix) {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, obj.Key)
		}
		for _, k := range keys {
			if err := st.Delete(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		w, _ = week(t, cfg, logPath)
		if w.Status != WeekUnproven {
			t.Errorf("week %+v, want unproven", w)
		}
	})
}
