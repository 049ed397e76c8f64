package drill_test

import (
	"context"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// fixture is one real backup of a seeded database in a local destination.
type fixture struct {
	job    *config.Job
	dest   storage.Destination
	ids    []age.Identity
	m      *manifest.Manifest
	signer *sign.Signer
	// scratch is the scratch database the last run made.
	scratch snapshot.Scratch
	// trust, when set, replaces the signer's trust in run.
	trust *manifest.Trust
}

func newFixture(t *testing.T, src config.Source) *fixture {
	t.Helper()
	id := backuptest.NewIdentity(t)
	dest := backuptest.LocalDestinations(t, "offsite")[0]
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	signer := signtest.NewSigner()
	m := backuptest.Take(t, backup.Job{Source: s, Destinations: []storage.Destination{dest}, Signer: signer,
		Recipients: []string{id.Recipient().String()}, Level: 3, Threads: 2})
	job := &config.Job{Name: "app", Source: src, Destinations: []string{"offsite"}, RTO: config.Duration(8 * time.Hour),
		Drill: config.Drill{From: "offsite", WarnPercent: 50, Target: config.DrillTarget{Host: src.Host, Port: src.Port, User: src.User, Dir: t.TempDir()}}}
	return &fixture{job: job, dest: dest, ids: []age.Identity{id}, m: m, signer: signer}
}

func (f *fixture) run(t *testing.T, now func() time.Time) (*drill.Report, error) {
	t.Helper()
	target := f.job.Drill.Target
	server := config.Source{Type: f.job.Source.Type, Host: target.Host, Port: target.Port, User: target.User, Password: target.Password}
	trust := signtest.Trust(f.signer)
	if f.trust != nil {
		trust = *f.trust
	}
	return drill.Run(context.Background(), drill.Options{Job: f.job, From: f.dest, Identities: f.ids, Now: now, Log: zap.NewNop(),
		Trust: trust,
		NewScratch: func(info dumpinfo.Info, name string) (snapshot.Scratch, error) {
			s, err := snapshot.NewScratch(info, server, name)
			f.scratch = s
			return s, err
		}})
}

// rewriteManifest replaces the stored manifest with m, validly signed:
// the data no longer matches what the backup recorded (a loader bug, or a
// dump that silently lost rows), which only a drill can notice.
func (f *fixture) rewriteManifest(t *testing.T, m *manifest.Manifest) {
	t.Helper()
	ctx := context.Background()
	if err := f.dest.Store.Delete(ctx, manifest.Key(m.Job, m.ID)); err != nil {
		t.Fatal(err)
	}
	if err := manifest.Write(ctx, f.dest.Store, m, f.signer); err != nil {
		t.Fatal(err)
	}
}

func sqliteSource(t *testing.T, rows int) config.Source {
	path := filepath.Join(t.TempDir(), "app.db")
	dbtest.SeedSQLite(t, path, rows)
	return config.Source{Type: "sqlite", Path: path}
}

func TestSQLiteDrillPasses(t *testing.T) {
	f := newFixture(t, sqliteSource(t, 2000))
	rep, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if !rep.Passed() || rep.Backup != f.m.ID || len(rep.Tables) == 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, tc := range rep.Tables {
		if !tc.OK {
			t.Errorf("table %s", tc)
		}
	}
	if rep.Phase(drill.PhaseLoad) <= 0 || rep.Throughput <= 0 || rep.HeadroomBytes <= rep.PlainBytes {
		t.Errorf("load %s throughput %.0f headroom %d plain %d", rep.Phase(drill.PhaseLoad), rep.Throughput, rep.HeadroomBytes, rep.PlainBytes)
	}
	files, _ := filepath.Glob(filepath.Join(f.job.Drill.Target.Dir, "coffer_drill_*"))
	if len(files) != 0 {
		t.Errorf("scratch files left: %v", files)
	}
}

// TestDrillDetectsCountMismatch: the restored data does not match the
// counts the manifest recorded; the drill fails naming the table, and the
// scratch database is still dropped.
func TestDrillDetectsCountMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  func(t *testing.T) config.Source
	}{
		{"sqlite", func(t *testing.T) config.Source { return sqliteSource(t, 500) }},
		{"postgres", func(t *testing.T) config.Source {
			src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
			dbtest.SeedPostgres(t, src, 500)
			return src
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.src(t))
			m := *f.m
			if m.Tables == nil || len(m.Tables.Counts) == 0 {
				t.Fatal("backup recorded no row counts")
			}
			counts := append([]dumpinfo.TableRows(nil), m.Tables.Counts...)
			counts[0].Rows += 7
			m.Tables = &dumpinfo.Tables{Exact: true, Method: m.Tables.Method, Counts: counts}
			f.rewriteManifest(t, &m)

			rep, err := f.run(t, nil)
			if err == nil || rep.Passed() {
				t.Fatalf("drill passed with wrong counts: %+v", rep)
			}
			want := "table " + counts[0].Name + " has " + itoa(counts[0].Rows-7) + " rows, the backup recorded " + itoa(counts[0].Rows)
			if !strings.Contains(rep.Error, want) {
				t.Errorf("error %q does not say %q", rep.Error, want)
			}
			if rep.Phase(drill.PhaseCleanup) == 0 && len(rep.Phases) != 4 {
				t.Errorf("phases %+v: cleanup must run after a failed validation", rep.Phases)
			}
			if f.scratch == nil {
				t.Fatal("the drill made no scratch database")
			}
			if ok, err := f.scratch.Exists(context.Background()); err != nil || ok {
				t.Errorf("scratch %s still exists after a failed drill (%v)", f.scratch, err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDrillOverRTOFails: with a clock that moves an hour at every
// reading, the drill takes far longer than a 3h RTO and fails on time
// alone.
func TestDrillOverRTOFails(t *testing.T) {
	f := newFixture(t, sqliteSource(t, 100))
	f.job.RTO = config.Duration(3 * time.Hour)
	rep, err := f.run(t, steppingClock(time.Hour))
	if err != nil {
		t.Fatalf("drill error %v; the data is fine, only the time is over", err)
	}
	if rep.Passed() || !strings.Contains(rep.Error, "longer than the RTO of 3h") || rep.RTORatio <= 1 {
		t.Errorf("report result %s ratio %.2f error %q", rep.Result, rep.RTORatio, rep.Error)
	}
	if rep.HeadroomBytes != 0 {
		t.Errorf("headroom %d, want 0 once the fixed phases alone overrun the RTO", rep.HeadroomBytes)
	}
}

// TestDrillWarnsAboveFraction: a passing drill that took more than
// warn_percent of the RTO carries a warning.
func TestDrillWarnsAboveFraction(t *testing.T) {
	f := newFixture(t, sqliteSource(t, 100))
	f.job.RTO = config.Duration(15 * time.Hour)
	rep, _ := f.run(t, steppingClock(time.Hour)) // about 10h of 15h
	if !rep.Passed() || !strings.Contains(rep.Warning, "warning above 50%") {
		t.Errorf("result %s warning %q", rep.Result, rep.Warning)
	}
}

// steppingClock returns a clock that moves step forward at every reading.
func steppingClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step)
		return t
	}
}

func TestCompareTables(t *testing.T) {
	got := drill.CompareTables(
		[]dumpinfo.TableRows{{Name: "a", Rows: 3}, {Name: "b", Rows: 5}, {Name: "gone", Rows: 1}},
		[]dumpinfo.TableRows{{Name: "a", Rows: 3}, {Name: "b", Rows: 4}, {Name: "new", Rows: 2}},
	)
	want := []string{
		"table a: 3 rows",
		"table b has 4 rows, the backup recorded 5",
		"table gone is missing (backup recorded 1 rows)",
		"table new (2 rows) is not in the backup's record",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] || got[i].OK != (i == 0) {
			t.Errorf("%d: %s (ok %v), want %s", i, got[i], got[i].OK, want[i])
		}
	}
}

// TestDrillRefusesProductionName: a scratch name that is the database of
// a job in the configuration is refused before anything is created.
func TestDrillRefusesProductionName(t *testing.T) {
	f := newFixture(t, sqliteSource(t, 100))
	id := strings.NewReplacer(".", "", "-", "").Replace(strings.ToLower(f.m.ID))
	victim := filepath.Join(f.job.Drill.Target.Dir, "coffer_drill_app_"+id+".sqlite")
	dbtest.SeedSQLite(t, victim, 10)
	before := dbtest.SQLiteTableHashes(t, victim)
	cfg := &config.Config{JobOrder: []string{"app", "prod"}, Jobs: map[string]*config.Job{
		"app":  f.job,
		"prod": {Name: "prod", Source: config.Source{Type: "sqlite", Path: victim}},
	}}
	rep, err := drill.Run(context.Background(), drill.Options{Config: cfg, Job: f.job, From: f.dest, Identities: f.ids,
		Trust: signtest.Trust(f.signer), Log: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), "is the name of job prod's database") {
		t.Fatalf("drill over a configured database: %v", err)
	}
	if rep.Passed() || len(rep.Phases) != 1 {
		t.Errorf("report %+v: want a failed drill that stopped at locate", rep)
	}
	if got := dbtest.SQLiteTableHashes(t, victim); !maps.Equal(got, before) {
		t.Error("the configured database was touched")
	}
}

// TestDrillRecordsManifestVerification: a drill records whether the
// backup's manifest signature verified, and by which key; one that read
// the manifest with SkipSignature (coffer drill --insecure-skip-signature)
// under a key it does not trust still restores, but its stored evidence
// says the manifest was not verified, and is no evidence.
func TestDrillRecordsManifestVerification(t *testing.T) {
	f := newFixture(t, sqliteSource(t, 200))
	rep, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if rep.ManifestVerified == nil || !*rep.ManifestVerified || rep.ManifestSignedBy != f.signer.Public().ID() || rep.Unproven() != "" {
		t.Errorf("verified drill: manifest_verified %v signed_by %q unproven %q; want true by %s", rep.ManifestVerified, rep.ManifestSignedBy, rep.Unproven(), f.signer.Public().ID())
	}

	other := signtest.Trust(signtest.NewSigner()) // trusts another key only
	other.SkipSignature = true
	f.trust = &other
	rep, err = f.run(t, nil)
	if err != nil || !rep.Passed() {
		t.Fatalf("drill with SkipSignature: %v", err)
	}
	if rep.ManifestVerified == nil || *rep.ManifestVerified || rep.ManifestSignedBy != "" || !strings.Contains(rep.Unproven(), "not verified") {
		t.Errorf("skipped drill: manifest_verified %v signed_by %q unproven %q; want false", rep.ManifestVerified, rep.ManifestSignedBy, rep.Unproven())
	}
	if err := drill.WriteReport(context.Background(), f.dest.Store, rep, f.signer); err != nil {
		t.Fatal(err)
	}
	got, err := drill.LatestReport(context.Background(), f.dest.Store, "app", signtest.Trust(f.signer))
	if err != nil || got == nil || got.ID != rep.ID || got.ManifestVerified == nil || *got.ManifestVerified {
		t.Errorf("stored evidence %+v, %v: want manifest_verified false", got, err)
	}
}
