package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
)

// drillReport is the part of `coffer drill --json` the tests check.
type drillReport struct {
	ID     string `json:"id"`
	Backup string `json:"backup"`
	From   string `json:"from"`
	Target string `json:"target"`
	Result string `json:"result"`
	Error  string `json:"error"`
	Phases []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"phases"`
	TotalSeconds  float64 `json:"total_seconds"`
	RTOSeconds    float64 `json:"rto_seconds"`
	RTORatio      float64 `json:"rto_ratio"`
	PlainBytes    int64   `json:"plain_bytes"`
	HeadroomBytes int64   `json:"headroom_bytes"`
	CountsExact   bool    `json:"counts_exact"`
	Tables        []struct {
		Name string `json:"name"`
		Want int64  `json:"want"`
		Got  int64  `json:"got"`
		OK   bool   `json:"ok"`
	} `json:"tables"`
	Checks []struct {
		Name string `json:"name"`
		OK   bool   `json:"ok"`
	} `json:"checks"`
}

// drill runs `coffer drill --json` with args and decodes its report.
func (e *env) drill(args ...string) (drillReport, string, int) {
	e.t.Helper()
	out, stderr, code := e.run(append([]string{"drill", "--json", "--identity", e.identity}, args...)...)
	var r drillReport
	if out != "" {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			e.t.Fatalf("drill --json: %v\n%s", err, out)
		}
	}
	return r, stderr, code
}

// checkPassed asserts a drill report passed with every table matching.
func checkPassed(t *testing.T, r drillReport, code int, backup string) {
	t.Helper()
	if code != 0 || r.Result != "passed" {
		t.Fatalf("drill exit %d result %q error %q, want a pass", code, r.Result, r.Error)
	}
	if r.Backup != backup || r.From != "offsite" {
		t.Errorf("drilled %s from %s, want %s from offsite (the default drill source)", r.Backup, r.From, backup)
	}
	if len(r.Tables) < 2 || !r.CountsExact {
		t.Errorf("tables %+v exact=%v: want every seeded table checked against exact counts", r.Tables, r.CountsExact)
	}
	for _, tb := range r.Tables {
		if !tb.OK || tb.Want != tb.Got || tb.Want <= 0 {
			t.Errorf("table %+v: want matching non-zero counts", tb)
		}
	}
	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "locate,load,validate,cleanup" {
		t.Errorf("phases %v", names)
	}
	if r.TotalSeconds <= 0 || r.RTOSeconds != 8*3600 || r.RTORatio <= 0 || r.RTORatio > 0.01 || r.PlainBytes <= 0 || r.HeadroomBytes <= r.PlainBytes {
		t.Errorf("timings: total %.3fs rto %.0fs ratio %g plain %d headroom %d", r.TotalSeconds, r.RTOSeconds, r.RTORatio, r.PlainBytes, r.HeadroomBytes)
	}
}

// drillKeys lists the drill reports of job in b.
func drillKeys(t *testing.T, b *bucket, job string) []string {
	var out []string
	for _, k := range b.keys(t) {
		if strings.HasPrefix(k, "_coffer/drills/"+job+"/") {
			out = append(out, k)
		}
	}
	return out
}

// TestDrillPostgresFromOffsite: a drill restores the newest backup from
// the offsite MinIO into a scratch database, every table's row count
// matches the counts recorded at backup time, a user check passes, the
// scratch database is gone afterwards, and the evidence is in the offsite
// bucket and the audit trail.
func TestDrillPostgresFromOffsite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 20_000)
	want := dbtest.PostgresTableHashes(t, src)
	e.writeConfig("app", sourceYAML(src)+
		"    drill:\n      checks:\n        - {name: customers exist, query: \"SELECT count(*) FROM customers\", expect: \"> 0\"}\n")
	e.backup("app")
	newest := listJSON(t, e)[0].ID

	r, _, code := e.drill("--job", "app")
	checkPassed(t, r, code, newest)
	if len(r.Checks) != 1 || !r.Checks[0].OK {
		t.Errorf("user checks %+v, want one passing", r.Checks)
	}
	if n := pgScratchDatabases(t, src); slices.Contains(n, scratchName("app", newest)) {
		t.Errorf("scratch database %s left behind", scratchName("app", newest))
	}
	if keys := drillKeys(t, e.offsite, "app"); len(keys) != 1 || !strings.Contains(keys[0], r.ID) {
		t.Errorf("offsite drill reports %v, want the one for %s", keys, r.ID)
	}
	if keys := drillKeys(t, e.primary, "app"); len(keys) != 0 {
		t.Errorf("primary holds drill reports %v; the drill ran from offsite", keys)
	}
	out, _, _ := e.run("audit", "--format", "json")
	if !strings.Contains(out, `"action": "drill"`) && !strings.Contains(out, `"action":"drill"`) {
		t.Errorf("no drill event in the audit trail:\n%s", out)
	}

	// The compliance report sees the drill and the signed, encrypted backup.
	out, _, code = e.run("report", "--format", "json", "--since", "2w")
	var rep struct {
		Jobs []struct {
			Controls []struct {
				ID       string   `json:"id"`
				Status   string   `json:"status"`
				Evidence []string `json:"evidence"`
			} `json:"controls"`
			Drills []struct {
				ID     string `json:"id"`
				Result string `json:"result"`
			} `json:"drills"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Jobs) != 1 {
		t.Fatalf("report --format json (exit %d): %v\n%s", code, err, out)
	}
	for _, c := range rep.Jobs[0].Controls {
		if (c.ID == "drill" || c.ID == "encryption") && c.Status != "pass" {
			t.Errorf("report control %s: %s %v, want pass", c.ID, c.Status, c.Evidence)
		}
	}
	if d := rep.Jobs[0].Drills; len(d) != 1 || d[0].ID != r.ID || d[0].Result != "passed" {
		t.Errorf("report drill history %+v, want the drill %s", d, r.ID)
	}

	// coffer status shows both, and its restore command works as printed.
	out, _, code = e.run("status", "--json")
	var st []struct {
		LastBackup struct {
			ID           string   `json:"id"`
			Destinations []string `json:"destinations"`
		} `json:"last_backup"`
		LastDrill struct {
			ID     string `json:"id"`
			Result string `json:"result"`
		} `json:"last_drill"`
		Restore  string   `json:"restore_command"`
		Stock    string   `json:"stock_tools_command"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	s := st[0]
	if code != 0 || s.LastBackup.ID != newest || len(s.LastBackup.Destinations) != 2 || s.LastDrill.ID != r.ID || s.LastDrill.Result != "passed" || len(s.Problems) != 0 {
		t.Errorf("status exit %d: %+v", code, s)
	}
	if !strings.Contains(s.Stock, "age -d -i") || !strings.Contains(s.Stock, "zstd -d | pg_restore") {
		t.Errorf("stock tools command %q", s.Stock)
	}
	target := dbtest.CreatePostgresDB(t)
	dbtest.DropPostgresDB(t, target)
	args := strings.Fields(strings.NewReplacer("/path/to/identity.txt", e.identity, "NEW_DATABASE", target).Replace(s.Restore))
	if len(args) < 2 || args[0] != "coffer" {
		t.Fatalf("restore command %q", s.Restore)
	}
	if _, _, code := runCmd(t, e.extraEnv, nil, cofferBin, args[1:]...); code != 0 {
		t.Fatalf("the restore command status printed failed: exit %d", code)
	}
	if got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); !maps.Equal(got, want) {
		t.Error("the status restore command restored different rows")
	}
}

// TestDrillMariaDBFromOffsite is the MariaDB drill end to end.
func TestDrillMariaDBFromOffsite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreateMariaDB(t)
	src := dbtest.MariaDBSource(t, db)
	dbtest.SeedMariaDB(t, src, 20_000)
	e.writeConfig("shop", sourceYAML(src))
	e.backup("shop")
	newest := listJSON(t, e)[0].ID

	r, _, code := e.drill("--job", "shop")
	checkPassed(t, r, code, newest)
	conn := dbtest.MariaDBOpen(t, src)
	var n int
	if err := conn.QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", scratchName("shop", newest)).Scan(&n); err != nil || n != 0 {
		t.Errorf("scratch database %s left: %d (%v)", scratchName("shop", newest), n, err)
	}
	if keys := drillKeys(t, e.offsite, "shop"); len(keys) != 1 {
		t.Errorf("offsite drill reports %v, want one", keys)
	}
}

// TestDrillOffsiteUnreachable: with the offsite down the drill fails with
// an error naming it and alerts; it does not fall back to the primary.
// --from primary is the explicit way to drill the primary.
func TestDrillOffsiteUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	var mu sync.Mutex
	var hooks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	e.sqliteJob("app", 500)
	e.backup("app")

	// Point the offsite at a port nobody listens on.
	proxy := newProxy(t, strings.TrimPrefix(e.offsite.server.Endpoint, "http://"))
	proxy.down()
	cfg := strings.Replace(readFile(t, e.config), e.offsite.server.Endpoint, proxy.url(), 1) +
		"notify:\n  insecure_http: true\n  webhooks: [\"" + srv.URL + "/hook\"]\n"
	writeFile(t, e.config, cfg)

	r, stderr, code := e.drill("--job", "app")
	if code != 1 {
		t.Fatalf("drill exit %d, want 1 (failed)", code)
	}
	if r.Result != "failed" || r.From != "offsite" || !strings.Contains(r.Error, "offsite") {
		t.Errorf("report %+v: want a failed drill from offsite naming it", r)
	}
	if !strings.Contains(stderr, "offsite") {
		t.Errorf("stderr does not name the offsite:\n%s", stderr)
	}
	mu.Lock()
	got := strings.Join(hooks, "\n")
	mu.Unlock()
	if !strings.Contains(got, `"kind":"drill"`) || !strings.Contains(got, `"outcome":"failed"`) {
		t.Errorf("webhook got %q, want a failed drill alert", got)
	}

	// The primary still works, when asked for explicitly.
	r, _, code = e.drill("--job", "app", "--from", "primary")
	if code != 0 || r.From != "primary" || r.Result != "passed" {
		t.Errorf("drill --from primary: exit %d %+v", code, r)
	}
}

// TestDrillRefusesExistingTarget: a scratch database that already exists
// is refused and left untouched, data and all.
func TestDrillRefusesExistingTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 200)
	e.writeConfig("app", sourceYAML(src))
	e.backup("app")
	id := listJSON(t, e)[0].ID
	scratch := scratchName("app", id)

	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	if _, err := admin.Exec(t.Context(), "CREATE DATABASE "+scratch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbtest.DropPostgresDB(t, scratch) })
	keep := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, scratch))
	if _, err := keep.Exec(t.Context(), "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('mine')"); err != nil {
		t.Fatal(err)
	}
	keep.Close(t.Context())

	r, _, code := e.drill("--job", "app")
	if code != 1 || r.Result != "failed" || !strings.Contains(r.Error, "already exists") || !strings.Contains(r.Error, scratch) {
		t.Fatalf("drill exit %d, report %+v: want refusal naming %s", code, r, scratch)
	}
	check := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, scratch))
	defer check.Close(t.Context())
	var v string
	if err := check.QueryRow(t.Context(), "SELECT v FROM precious").Scan(&v); err != nil || v != "mine" {
		t.Errorf("existing database was touched: %q, %v", v, err)
	}
}

// TestDaemonDrills: the daemon drills a job whose drill is due at start
// (never drilled) and exposes the drill metrics.
func TestDaemonDrills(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, _ := pgJob(t, "app", 500, "    schedule: \"0 2 * * 0\"\n    drill:\n      identity_file: "+e.identity+"\n")
	noID, _ := pgJob(t, "noid", 100, "    schedule: \"0 2 * * 0\"\n") // drills on, no identity_file
	cfg := e.daemonConfig("drill.yaml", jobs+noID, daemonYAML)
	if _, _, code := e.run("backup", "--all", "--config", cfg); code != 0 {
		t.Fatalf("backup exit %d", code)
	}
	d := e.startDaemon("a", cfg)
	waitFor(t, 20*time.Second, "the daemon's health endpoint", func() bool {
		code, _ := d.get("/healthz")
		return code == 200
	})
	waitFor(t, 60*time.Second, "a drill in the metrics", func() bool {
		return d.metric(`coffer_drill_runs_total{job="app",result="passed"}`) >= 1
	})
	// The job without a drill identity fails its drill loudly, at start.
	waitFor(t, 30*time.Second, "the failed drill of job noid", func() bool {
		return d.metric(`coffer_drill_runs_total{job="noid",result="failed"}`) >= 1
	})
	if len(d.logLines("scheduled drills of this job will fail: no drill.identity_file (the private age identity drills decrypt with)")) == 0 {
		t.Error("no start-up warning about the job without drill.identity_file")
	}
	if v := d.metric(`coffer_drill_rto_ratio{job="app"}`); v <= 0 || v > 0.01 {
		t.Errorf("coffer_drill_rto_ratio = %g", v)
	}
	if v := d.metric(`coffer_drill_duration_seconds{job="app"}`); v <= 0 {
		t.Errorf("coffer_drill_duration_seconds = %g", v)
	}
	if len(drillKeys(t, e.offsite, "app")) != 1 {
		t.Errorf("offsite drill reports: %v", drillKeys(t, e.offsite, "app"))
	}
	if ids := auditEvents(t, e, "a", "drill", "ok"); len(ids) != 1 {
		t.Errorf("audit drill events: %v", ids)
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
}

// scratchName is the scratch database a drill of backup id of job uses.
func scratchName(job, id string) string {
	return "coffer_drill_" + job + "_" + regexp.MustCompile(`[^a-z0-9_]`).ReplaceAllString(strings.ToLower(id), "")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pgScratchDatabases lists databases named like drill scratch databases.
func pgScratchDatabases(t *testing.T, src config.Source) []string {
	conn := dbtest.PostgresConnect(t, src)
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), "SELECT datname FROM pg_database WHERE datname LIKE 'coffer_drill_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

// drillControl runs `coffer report --format json` and returns the drill
// control's status and evidence, and the last drill in the history.
func drillControl(t *testing.T, e *env) (status string, evidence []string, last map[string]any) {
	t.Helper()
	out, _, code := e.run("report", "--format", "json", "--since", "2w")
	var rep struct {
		Jobs []struct {
			Controls []struct {
				ID       string   `json:"id"`
				Status   string   `json:"status"`
				Evidence []string `json:"evidence"`
			} `json:"controls"`
			Drills []map[string]any `json:"drills"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Jobs) != 1 {
		t.Fatalf("report --format json (exit %d): %v\n%s", code, err, out)
	}
	for _, c := range rep.Jobs[0].Controls {
		if c.ID == "drill" {
			status, evidence = c.Status, c.Evidence
		}
	}
	if d := rep.Jobs[0].Drills; len(d) > 0 {
		last = d[len(d)-1]
	}
	return status, evidence, last
}

// TestDrillSkippingSignatureIsNoEvidence: a drill that read its backup's
// manifest with --insecure-skip-signature, whose signature did not verify
// (the offsite manifest re-signed by an intruder's key), still restores,
// but its signed evidence records that the manifest was not verified and
// the compliance report fails it, naming why; a normal drill before it
// passed the report with the signing key's id on record.
func TestDrillSkippingSignatureIsNoEvidence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.sqliteJob("lite", 500)
	e.backup("lite")
	id := listJSON(t, e)[0].ID

	r, _, code := e.drill("--job", "lite")
	if code != 0 || r.Result != "passed" {
		t.Fatalf("normal drill: exit %d %+v", code, r)
	}
	status, evidence, last := drillControl(t, e)
	if status != "pass" || last["id"] != r.ID || last["result"] != "passed" || last["manifest_verified"] != true || last["manifest_signed_by"] == "" {
		t.Fatalf("report after a normal drill: %s %v, last %v; want pass, verified", status, evidence, last)
	}

	otherKey := filepath.Join(e.dir, "intruder.key")
	if _, _, code := e.run("keygen", "--signing-key", otherKey); code != 0 {
		t.Fatal("keygen --signing-key")
	}
	intruder, err := sign.LoadSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	key := manifest.Key("lite", id)
	e.offsite.put(t, key, e.forgeManifest(e.offsite, key, intruder))
	time.Sleep(5 * time.Millisecond) // drill ids sort by time

	out, stderr, code := e.run("drill", "--json", "--identity", e.identity, "--job", "lite", "--insecure-skip-signature")
	var skipped struct {
		ID               string `json:"id"`
		Result           string `json:"result"`
		ManifestVerified *bool  `json:"manifest_verified"`
	}
	if err := json.Unmarshal([]byte(out), &skipped); err != nil || code != 0 || skipped.Result != "passed" {
		t.Fatalf("drill --insecure-skip-signature: exit %d, %v\n%s\n%s", code, err, out, stderr)
	}
	if skipped.ManifestVerified == nil || *skipped.ManifestVerified {
		t.Errorf("drill --insecure-skip-signature evidence manifest_verified = %v, want false", skipped.ManifestVerified)
	}
	status, evidence, last = drillControl(t, e)
	if status != "fail" || !slices.ContainsFunc(evidence, func(s string) bool { return strings.Contains(s, "manifest signature was not verified") }) {
		t.Errorf("report after a drill that skipped verification: %s %v; want fail naming it", status, evidence)
	}
	if last["id"] != skipped.ID || last["result"] != "failed" || last["manifest_verified"] != false || !strings.Contains(fmt.Sprint(last["error"]), "--insecure-skip-signature") {
		t.Errorf("report's last drill %v: want %s failed, manifest_verified false, the reason in error", last, skipped.ID)
	}
}
