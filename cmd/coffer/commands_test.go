package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage/fs"
)

// These tests run the command line in process (newRoot) on a
// backuptest.Setup: an SQLite job backed up to two local directories, no
// service needed. internal/e2e runs the built binary against S3 and the
// database servers.

// result is what one run of the command line gave.
type result struct {
	out, errOut string // stdout and stderr, with the error line main prints (the log goes to the process's stderr)
	code        int    // the exit code main would return
	err         error
}

// coffer runs the command line with args, as main does, with none of the
// COFFER_ environment variables set.
func coffer(t *testing.T, args ...string) result {
	t.Helper()
	for _, v := range []string{"COFFER_CONFIG", "COFFER_IDENTITY", "COFFER_PASSPHRASE_FILE"} {
		t.Setenv(v, "")
	}
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	code := exitCode(&errOut, err)
	return result{out: out.String(), errOut: errOut.String(), code: code, err: err}
}

// jsonOf decodes r's stdout into v, failing t when r did not exit with
// code or its output is not JSON.
func (r result) jsonOf(t *testing.T, code int, v any) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d (%v), want %d; stdout:\n%s", r.code, r.err, code, r.out)
	}
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		t.Fatalf("stdout is not the JSON wanted: %v\n%s", err, r.out)
	}
}

// backupJSON is the part of `coffer backup --json` checked here.
type backupJSON []struct {
	Job          string `json:"job"`
	ID           string `json:"id"`
	Outcome      string `json:"outcome"`
	Destinations []struct {
		Name  string `json:"destination"`
		Error string `json:"error"`
	} `json:"destinations"`
}

// backupNow runs `coffer backup --json` of s's job, which must succeed
// on both destinations, and returns the backup's id.
func backupNow(t *testing.T, s *backuptest.Setup) string {
	t.Helper()
	var res backupJSON
	coffer(t, "backup", "--config", s.Config, "--job", "app", "--json").jsonOf(t, exitOK, &res)
	if len(res) != 1 || res[0].Job != "app" || res[0].Outcome != "ok" || len(res[0].Destinations) != 2 {
		t.Fatalf("backup --json: %+v, want one ok backup of app on two destinations", res)
	}
	for _, d := range res[0].Destinations {
		if d.Error != "" {
			t.Fatalf("backup --json: destination %s failed: %s", d.Name, d.Error)
		}
	}
	return res[0].ID
}

// TestBackupListVerifyRestore is the path an operator takes: back up,
// list, verify and restore into a new SQLite file, whose rows equal the
// source's. A second restore into the now non-empty file fails (exit 1)
// and leaves it as it was, unless --force. Each command's JSON holds what
// scripts read.
func TestBackupListVerifyRestore(t *testing.T) {
	s := backuptest.NewSetup(t, 2000, "")
	want := dbtest.SQLiteTableHashes(t, s.Database)
	id := backupNow(t, s)

	var list struct {
		Backups []struct {
			Job          string   `json:"job"`
			ID           string   `json:"id"`
			Destinations []string `json:"destinations"`
			Missing      []string `json:"missing_from"`
			Sequence     int64    `json:"sequence"`
			SignedBy     string   `json:"signed_by"`
		} `json:"backups"`
		Unreachable map[string]string `json:"unreachable"`
	}
	coffer(t, "list", "--config", s.Config, "--json").jsonOf(t, exitOK, &list)
	if b := list.Backups; len(b) != 1 || b[0].ID != id || !slices.Equal(b[0].Destinations, []string{"primary", "offsite"}) ||
		b[0].Missing == nil || len(b[0].Missing) != 0 || b[0].Sequence != 1 || b[0].SignedBy != s.Signer.Public().ID() || len(list.Unreachable) != 0 {
		t.Fatalf("list --json: %+v, want %s on both, missing from none, sequence 1, signed by %s", list, id, s.Signer.Public().ID())
	}

	var checks []struct {
		ID          string `json:"id"`
		Destination string `json:"destination"`
		OK          bool   `json:"ok"`
		Level       string `json:"level"`
	}
	coffer(t, "verify", "--config", s.Config, "--job", "app", "--identity", s.Identity, "--json").jsonOf(t, exitOK, &checks)
	if len(checks) != 2 || checks[0].Destination != "primary" || checks[1].Destination != "offsite" {
		t.Fatalf("verify --json: %+v, want a check on primary, then offsite", checks)
	}
	for _, c := range checks {
		if !c.OK || c.ID != id {
			t.Errorf("verify --json: %+v, want %s ok", c, id)
		}
	}

	target := filepath.Join(t.TempDir(), "restored.db")
	var rep struct {
		Job      string `json:"job"`
		ID       string `json:"id"`
		ServedBy string `json:"served_by"`
		Target   string `json:"target"`
		Attempts []struct {
			Destination string `json:"destination"`
			Error       string `json:"error"`
		} `json:"attempts"`
	}
	coffer(t, "restore", "--config", s.Config, "--job", "app", "--identity", s.Identity, "--target", target, "--json").jsonOf(t, exitOK, &rep)
	if rep.Job != "app" || rep.ID != id || rep.ServedBy != "primary" || len(rep.Attempts) != 1 || rep.Attempts[0].Error != "" {
		t.Fatalf("restore --json: %+v, want %s served by primary at the first attempt", rep, id)
	}
	if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, want) {
		t.Fatalf("restored database differs from the source:\n got %v\nwant %v", got, want)
	}

	// The target now holds data: not replaced without --force.
	dbtest.SQLiteOpen(t, target).Exec(`DELETE FROM orders WHERE id % 2 = 0`)
	changed := dbtest.SQLiteTableHashes(t, target)
	r := coffer(t, "restore", "--config", s.Config, "--job", "app", "--identity", s.Identity, "--target", target)
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty target: exit %d, %v; want 1 naming it not empty", r.code, r.err)
	}
	if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, changed) {
		t.Fatal("a refused restore changed the target")
	}
	r = coffer(t, "restore", "--config", s.Config, "--job", "app", "--identity", s.Identity, "--target", target, "--force")
	if r.code != exitOK || !strings.Contains(r.out, "restored app/"+id) {
		t.Fatalf("restore --force: exit %d (%v), stdout %q", r.code, r.err, r.out)
	}
	if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, want) {
		t.Fatal("restore --force: the target does not hold the backup's rows")
	}

	evs, err := audit.Read(t.Context(), filepath.Join(s.State, audit.FileName), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var restores []string
	for _, ev := range evs {
		if ev.Action == audit.ActionRestore {
			restores = append(restores, string(ev.Outcome))
		}
	}
	if !slices.Equal(restores, []string{"ok", "failed", "ok"}) {
		t.Errorf("audited restores %v, want ok, failed, ok", restores)
	}
}

// TestExitCodes: 0 ok, 3 when a backup reached only some destinations, 1
// when it reached none (or verify found a damaged copy), 2 for usage and
// configuration errors; a restore whose first copy is damaged falls back
// to the next and says so.
func TestExitCodes(t *testing.T) {
	s := backuptest.NewSetup(t, 500, "")
	cfg := []string{"--config", s.Config}

	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"unknown flag", []string{"backup", "--no-such-flag"}, "unknown flag"},
		{"unknown job", append([]string{"backup", "--job", "web"}, cfg...), "--job web: no such job"},
		{"job and --all", append([]string{"backup", "--job", "app", "--all"}, cfg...), "not both"},
		{"missing config", []string{"list", "--config", filepath.Join(s.Dir, "nope.yaml")}, "give --config FILE or set COFFER_CONFIG"},
		{"restore without identity", append([]string{"restore", "--job", "app", "-o", "x"}, cfg...), "--identity FILE is required"},
		{"restore to two places", append([]string{"restore", "--job", "app", "-o", "x", "--target", "y"}, cfg...), "exactly one of --target DB or -o FILE"},
	} {
		if r := coffer(t, tc.args...); r.code != exitUsage || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%s: exit %d (%v), want %d naming %q", tc.name, r.code, r.err, exitUsage, tc.want)
		}
	}
	bad := filepath.Join(s.Dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("recipients: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := coffer(t, "backup", "--job", "app", "--config", bad); r.code != exitUsage || !strings.Contains(r.err.Error(), "bad.yaml:") {
		t.Errorf("invalid config: exit %d (%v), want 2 naming the file and line", r.code, r.err)
	}

	// Offsite cannot store: a file stands where the job's folder goes.
	blocker := filepath.Join(s.Offsite, "app")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := coffer(t, "backup", "--job", "app", "--config", s.Config)
	if r.code != exitPartial || !strings.Contains(r.out, "app: partial backup") || !strings.Contains(r.out, "offsite    FAILED") {
		t.Fatalf("backup with offsite broken: exit %d (%v), stdout %q; want 3, partial, offsite FAILED", r.code, r.err, r.out)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}

	// The source is gone: nothing is stored anywhere.
	if err := os.Rename(s.Database, s.Database+".away"); err != nil {
		t.Fatal(err)
	}
	r = coffer(t, "backup", "--job", "app", "--config", s.Config)
	if r.code != exitFailed || !strings.Contains(r.out, "app: FAILED") {
		t.Fatalf("backup of a missing database: exit %d (%v), stdout %q; want 1, FAILED", r.code, r.err, r.out)
	}
	if err := os.Rename(s.Database+".away", s.Database); err != nil {
		t.Fatal(err)
	}
	id := backupNow(t, s)

	// One byte of primary's payload flipped: verify fails that copy
	// (exit 1); restore falls back to offsite and says so.
	m := payloadOf(t, s, id)
	payload := filepath.Join(s.Primary, filepath.FromSlash(m.Payload.Key))
	data, err := os.ReadFile(payload)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(payload, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var checks []struct {
		Destination string `json:"destination"`
		OK          bool   `json:"ok"`
		Error       string `json:"error"`
	}
	coffer(t, "verify", "--job", "app", "--config", s.Config, "--json").jsonOf(t, exitFailed, &checks)
	if len(checks) != 2 || checks[0].OK || checks[0].Error == "" || !checks[1].OK {
		t.Fatalf("verify --json with primary's copy damaged: %+v, want primary failed, offsite ok", checks)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	r = coffer(t, "restore", "--job", "app", "--config", s.Config, "--identity", s.Identity, "--target", target)
	if r.code != exitOK || !strings.Contains(r.out, "from offsite") || !strings.Contains(r.out, "note: 1 destination(s) failed first") {
		t.Fatalf("restore with primary's copy damaged: exit %d (%v), stdout %q; want it from offsite, noting primary's failure", r.code, r.err, r.out)
	}
	if got, want := dbtest.SQLiteTableHashes(t, target), dbtest.SQLiteTableHashes(t, s.Database); !maps.Equal(got, want) {
		t.Fatal("restored database differs from the source")
	}
}

// payloadOf reads backup id's manifest from s's primary directory.
func payloadOf(t *testing.T, s *backuptest.Setup, id string) *manifest.Manifest {
	t.Helper()
	st, err := fs.New(s.Primary)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Read(t.Context(), st, "primary", "app", id, manifest.ConfiguredTrust(s.Load(t).Signing))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStatusAndDrill: after a backup, status shows it on both
// destinations, with the commands that restore it, and exits 1 because
// the job was never drilled; a drill passes and status then exits 0,
// showing it.
func TestStatusAndDrill(t *testing.T) {
	s := backuptest.NewSetup(t, 500, "")
	id := backupNow(t, s)

	type status []struct {
		Job        string `json:"job"`
		LastBackup *struct {
			ID           string   `json:"id"`
			Destinations []string `json:"destinations"`
			Missing      []string `json:"missing_from"`
		} `json:"last_backup"`
		LastDrill *struct {
			Result string `json:"result"`
			From   string `json:"from"`
		} `json:"last_drill"`
		Restore    string   `json:"restore_command"`
		StockTools string   `json:"stock_tools_command"`
		Problems   []string `json:"problems"`
	}
	var st status
	coffer(t, "status", "--config", s.Config, "--json").jsonOf(t, exitFailed, &st)
	if len(st) != 1 || st[0].LastBackup == nil || st[0].LastBackup.ID != id || !slices.Equal(st[0].LastBackup.Destinations, []string{"primary", "offsite"}) ||
		len(st[0].LastBackup.Missing) != 0 || st[0].LastDrill != nil || !slices.Equal(st[0].Problems, []string{"never drilled"}) {
		t.Fatalf("status --json before a drill: %+v, want %s on both and the one problem \"never drilled\"", st, id)
	}
	if !strings.Contains(st[0].Restore, "--id "+id) || !strings.Contains(st[0].StockTools, "age -d -i "+s.Identity) {
		t.Errorf("status restore commands %q and %q, want them for %s with %s", st[0].Restore, st[0].StockTools, id, s.Identity)
	}

	r := coffer(t, "drill", "--config", s.Config, "--job", "app")
	if r.code != exitOK || !strings.Contains(r.out, "of job app: passed") {
		t.Fatalf("drill: exit %d (%v), stdout %q", r.code, r.err, r.out)
	}
	st = nil
	coffer(t, "status", "--config", s.Config, "--json").jsonOf(t, exitOK, &st)
	if len(st) != 1 || st[0].LastDrill == nil || st[0].LastDrill.Result != "passed" || st[0].LastDrill.From != "offsite" || len(st[0].Problems) != 0 {
		t.Fatalf("status --json after a drill: %+v, want the passed drill from offsite and no problem", st)
	}
}

// TestPrune: with the CLI's backup and two older ones past keep_within
// (28d, min_keep 2), a dry run plans to delete the oldest on both
// destinations and deletes nothing; the real run deletes it, audits each
// deletion, and list no longer shows it.
func TestPrune(t *testing.T) {
	s := backuptest.NewSetup(t, 200, "")
	id := backupNow(t, s)
	var stores []*fs.Store
	for _, dir := range []string{s.Primary, s.Offsite} {
		st, err := fs.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
	}
	now := time.Now()
	old := backuptest.Fake(t, "app", manifest.NewID(now.Add(-40*24*time.Hour)), nil, "primary", "offsite")
	kept := backuptest.Fake(t, "app", manifest.NewID(now.Add(-35*24*time.Hour)), nil, "primary", "offsite")
	for _, m := range []*manifest.Manifest{old, kept} {
		backuptest.Put(t, s.Signer, m, nil, stores[0], stores[1])
	}
	before := [][]string{backuptest.Keys(t, stores[0]), backuptest.Keys(t, stores[1])}

	type plan []struct {
		Job    string `json:"job"`
		DryRun bool   `json:"dry_run"`
		Items  []struct {
			Destination string `json:"destination"`
			ID          string `json:"id"`
			Outcome     string `json:"outcome"`
		} `json:"items"`
	}
	doomed := func(p plan, outcome string) []string {
		var out []string
		for _, res := range p {
			for _, it := range res.Items {
				if it.Outcome == outcome {
					out = append(out, it.Destination+":"+it.ID)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{"offsite:" + old.ID, "primary:" + old.ID}

	var dry plan
	coffer(t, "prune", "--config", s.Config, "--dry-run", "--json").jsonOf(t, exitOK, &dry)
	if got := doomed(dry, "would delete"); len(dry) != 1 || !dry[0].DryRun || !slices.Equal(got, want) {
		t.Fatalf("prune --dry-run --json: %+v, want %v to be deleted", dry, want)
	}
	for i, st := range stores {
		if got := backuptest.Keys(t, st); !slices.Equal(got, before[i]) {
			t.Fatalf("a dry run changed %s: %v, was %v", st, got, before[i])
		}
	}

	var real plan
	coffer(t, "prune", "--config", s.Config, "--json").jsonOf(t, exitOK, &real)
	if got := doomed(real, "deleted"); !slices.Equal(got, want) {
		t.Fatalf("prune --json: %+v, want %v deleted", real, want)
	}
	var list struct {
		Backups []struct{ ID string } `json:"backups"`
	}
	coffer(t, "list", "--config", s.Config, "--json").jsonOf(t, exitOK, &list)
	if len(list.Backups) != 2 || list.Backups[0].ID != kept.ID || list.Backups[1].ID != id {
		t.Fatalf("list after prune: %+v, want %s and %s", list, kept.ID, id)
	}
	evs, err := audit.Read(t.Context(), filepath.Join(s.State, audit.FileName), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, ev := range evs {
		if ev.Action == audit.ActionPrune && ev.Outcome == "deleted" {
			audited = append(audited, ev.Destination+":"+ev.BackupID)
		}
	}
	slices.Sort(audited)
	if !slices.Equal(audited, want) {
		t.Errorf("audited deletions %v, want %v", audited, want)
	}
}
