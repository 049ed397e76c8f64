package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
)

// daemonYAML is the daemon block every daemon test starts from: health on
// the address the harness passes, state in $STATE_DIRECTORY.
const daemonYAML = "  listen: ${COFFER_LISTEN}\n  shutdown_timeout: 10s\n"

// pgJob returns a jobs block for a seeded PostgreSQL database, with extra
// job settings (indented 4 spaces).
func pgJob(t *testing.T, name string, rows int, extra string) (string, map[string]string) {
	t.Helper()
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, rows)
	return "  " + name + ":\n    source:\n" + sourceYAML(src) + extra, dbtest.PostgresTableHashes(t, src)
}

// slowJob is an exec job whose dump streams 20 MB (so a multipart upload
// is under way) and then hangs.
func slowJob(name, extra string) string {
	return "  " + name + ":\n    source:\n      type: exec\n      command: [sh, -c, 'head -c 20000000 /dev/urandom; sleep 120']\n" + extra
}

// TestDaemonRunsCycles runs the daemon on a 4-second schedule against real
// PostgreSQL and both MinIOs: every cycle's backup lands in both buckets,
// runs never overlap, metrics count them, and SIGTERM exits 0.
func TestDaemonRunsCycles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, want := pgJob(t, "app", 2_000, "    schedule: \"*/4 * * * * *\"\n")
	cfg := e.daemonConfig("daemon.yaml", jobs, daemonYAML)
	d := e.startDaemon("a", cfg)

	// A first run at start (no backup yet: a missed slot), then one per slot.
	waitFor(t, 30*time.Second, "three backups", func() bool { return len(e.list(cfg)) >= 3 })
	if code, body := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := d.get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM, want 0", code)
	}

	backups := e.list(cfg)
	for i, b := range backups {
		if len(b.Missing) != 0 || len(b.Destinations) != 2 {
			t.Errorf("backup %s: on %v, missing from %v; want both buckets", b.ID, b.Destinations, b.Missing)
		}
		if i > 0 && b.Started.Before(backups[i-1].Finished) {
			t.Errorf("backup %s started before %s finished: runs overlapped", b.ID, backups[i-1].ID)
		}
	}
	// The daemon records its version in every manifest.
	var m struct {
		Manifest struct {
			CofferVersion string `json:"coffer_version"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal(e.primary.get(t, manifest.Key("app", backups[0].ID)), &m); err != nil || m.Manifest.CofferVersion != e2eVersion {
		t.Errorf("manifest of %s: coffer_version %q (%v); want the daemon's %q", backups[0].ID, m.Manifest.CofferVersion, err, e2eVersion)
	}
	if len(d.logLines("missed run: catching up now")) != 1 {
		t.Error("no catch-up run at start")
	}

	// The newest backup restores to the same rows.
	e.restorePostgres(cfg, "app", want)
}

// TestDaemonMetrics checks the metrics of a running daemon after a cycle.
func TestDaemonMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, _ := pgJob(t, "app", 500, "    schedule: \"0 2 * * 0\"\n")
	cfg := e.daemonConfig("daemon.yaml", jobs, daemonYAML)
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "the catch-up backup", func() bool { return len(e.list(cfg)) == 1 })
	waitFor(t, 10*time.Second, "the run to be counted", func() bool {
		return d.metric(`coffer_backup_runs_total{job="app",outcome="ok"}`) == 1
	})
	for _, dest := range []string{"primary", "offsite"} {
		ts := d.metric(fmt.Sprintf(`coffer_backup_last_success_timestamp_seconds{destination="%s",job="app"}`, dest))
		if ts < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("last success on %s = %v, want about now", dest, ts)
		}
	}
	next := d.metric(`coffer_next_run_timestamp_seconds{job="app"}`)
	if n := time.Unix(int64(next), 0); n.Weekday() != time.Sunday || n.UTC().Hour() != 2 || n.Before(time.Now()) {
		t.Errorf("next run %s, want the coming Sunday 02:00 UTC", n.UTC())
	}
	d.signal(syscall.SIGINT)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// TestDaemonKilledMidUpload kills -9 the daemon while an upload is under
// way: nothing is visible, and the restarted daemon backs up and sweeps the
// abandoned upload.
func TestDaemonKilledMidUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	cfg := e.daemonConfig("slow.yaml", slowJob("app", ""), daemonYAML+"  leftover_grace: 1s\n")
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "multipart uploads on both buckets", func() bool {
		return len(e.uploads(e.primary)) > 0 && len(e.uploads(e.offsite)) > 0
	})
	d.cmd.Process.Kill()
	d.wait(10 * time.Second)
	if b := e.list(cfg); len(b) != 0 {
		t.Fatalf("after kill -9: %d backups visible, want none", len(b))
	}

	jobs, want := pgJob(t, "app", 1_000, "")
	cfg = e.daemonConfig("good.yaml", jobs, daemonYAML+"  leftover_grace: 1s\n  repair_interval: 2s\n") // maintenance sweeps again when an upload was younger than the grace at the first sweep
	d = e.startDaemon("b", cfg)
	waitFor(t, 60*time.Second, "a good backup and no unfinished uploads", func() bool {
		return len(e.list(cfg)) == 1 && len(e.uploads(e.primary)) == 0 && len(e.uploads(e.offsite)) == 0
	})
	if len(d.logLines("swept")) == 0 && len(d.logLines("abort")) == 0 {
		t.Error("the sweep was not logged")
	}
	d.signal(syscall.SIGTERM)
	d.wait(15 * time.Second)
	e.restorePostgres(cfg, "app", want)
}

// restorePostgres restores job's newest backup with config into a new
// PostgreSQL database and checks its tables against want.
func (e *env) restorePostgres(config, job string, want map[string]string) {
	e.t.Helper()
	target := dbtest.CreatePostgresDB(e.t)
	dbtest.DropPostgresDB(e.t, target) // restore creates it
	if _, _, code := runCmd(e.t, e.extraEnv, nil, cofferBin, "restore", "--config", config, "--job", job, "--identity", e.identity,
		"--target", "postgres://postgres@127.0.0.1:5432/"+target); code != 0 {
		e.t.Fatalf("restore exit %d", code)
	}
	if got := dbtest.PostgresTableHashes(e.t, dbtest.PostgresSource(e.t, target)); !maps.Equal(got, want) {
		e.t.Error("restored tables differ from the source")
	}
}

// uploads lists the unfinished multipart uploads in b.
func (e *env) uploads(b *bucket) []string {
	e.t.Helper()
	keys, err := b.store.ListMultipartUploads(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// TestDaemonSIGTERMMidRun stops the daemon while a backup streams: exit 0,
// no manifest, no upload left behind.
func TestDaemonSIGTERMMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	cfg := e.daemonConfig("slow.yaml", slowJob("app", ""), daemonYAML)
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "multipart uploads", func() bool { return len(e.uploads(e.primary)) > 0 })
	start := time.Now()
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM mid-run, want 0", code)
	}
	t.Logf("stopped in %s", time.Since(start))
	if b := e.list(cfg); len(b) != 0 {
		t.Errorf("%d backups visible after SIGTERM mid-run", len(b))
	}
	for _, b := range []*bucket{e.primary, e.offsite} {
		if u := e.uploads(b); len(u) != 0 {
			t.Errorf("%s: unfinished uploads left: %v", b.name, u)
		}
		for _, k := range b.keys(t) {
			if !strings.HasPrefix(k, "_coffer/") {
				t.Errorf("%s: object left: %s", b.name, k)
			}
		}
	}
}

// TestDaemonSIGHUP: a broken config is rejected and the old one keeps
// running; a good one is taken.
func TestDaemonSIGHUP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, _ := pgJob(t, "app", 200, "    schedule: \"*/3 * * * * *\"\n")
	cfg := e.daemonConfig("daemon.yaml", jobs, daemonYAML)
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := e.startDaemon("a", cfg)
	waitFor(t, 20*time.Second, "a first backup", func() bool { return len(e.list(cfg)) >= 1 })

	broken := strings.Replace(string(good), "*/3 * * * * *", "every tuesday", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reload to be rejected", func() bool {
		return len(d.logLines("configuration reload rejected")) == 1
	})
	if l := d.logLines("configuration reload rejected")[0]; !strings.Contains(fmt.Sprint(l["error"]), "jobs.app.schedule") {
		t.Errorf("rejection does not name the bad field: %v", l)
	}
	if err := os.WriteFile(cfg, good, 0o600); err != nil { // list needs a valid file
		t.Fatal(err)
	}
	n := len(e.list(cfg))
	waitFor(t, 15*time.Second, "backups to go on under the old config", func() bool { return len(e.list(cfg)) >= n+2 })
	if v := d.metric(`coffer_config_reloads_total{result="failed"}`); v != 1 {
		t.Errorf("failed reloads metric = %v, want 1", v)
	}

	// A valid new config (a weekly schedule) is taken: backups stop.
	weekly := strings.Replace(string(good), "*/3 * * * * *", "0 2 * * 0", 1)
	if err := os.WriteFile(cfg, []byte(weekly), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reload", func() bool { return len(d.logLines("configuration reloaded")) == 1 })
	time.Sleep(1 * time.Second) // a run started before the reload may finish
	n = len(e.list(cfg))
	time.Sleep(4 * time.Second)
	if m := len(e.list(cfg)); m != n {
		t.Errorf("%d backups after switching to a weekly schedule, want %d", m, n)
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestTwoDaemonsOneBucket starts two daemons in HA mode on one config:
// each 3-second slot is backed up once, not twice.
func TestTwoDaemonsOneBucket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, _ := pgJob(t, "app", 200, "    schedule: \"*/3 * * * * *\"\n")
	cfg := e.daemonConfig("ha.yaml", jobs, daemonYAML+"  ha: true\n  lease_ttl: 10s\n")
	a := e.startDaemon("a", cfg)
	b := e.startDaemon("b", cfg)
	time.Sleep(13 * time.Second)
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)
	if ca, cb := a.wait(15*time.Second), b.wait(15*time.Second); ca != 0 || cb != 0 {
		t.Fatalf("exit codes %d, %d", ca, cb)
	}
	backups := e.list(cfg)
	if len(backups) < 3 {
		t.Fatalf("%d backups in 13s of 3s slots, want at least 3", len(backups))
	}
	slots := map[int64][]string{}
	for _, bk := range backups {
		slot := bk.Started.Unix() / 3
		slots[slot] = append(slots[slot], bk.ID)
	}
	for slot, ids := range slots {
		if len(ids) > 1 {
			t.Errorf("slot %s backed up %d times: %v", time.Unix(slot*3, 0).UTC().Format(time.TimeOnly), len(ids), ids)
		}
	}
	skipped := 0
	for _, d := range []*daemon{a, b} {
		skipped += len(d.logLines("another daemon holds the job's lease")) + len(d.logLines("slot already backed up by another daemon"))
	}
	t.Logf("%d backups, %d slots stood aside", len(backups), skipped)
	if skipped == 0 {
		t.Error("neither daemon ever stood aside: the lease was not used")
	}
}

// TestHARefusedWithoutConditionalWrites: HA mode needs a lease store.
func TestHARefusedWithoutConditionalWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	local := t.TempDir()
	cfg := e.header() + "destinations:\n  disk: {type: local, path: " + local + "}\n" +
		"jobs:\n" + slowJob("app", "") + "daemon:\n" + daemonYAML + "  ha: true\n"
	path := filepath.Join(e.dir, "ha-local.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := e.startDaemon("a", path)
	if code := d.wait(20 * time.Second); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(d.out.String(), "daemon.ha") || !strings.Contains(d.out.String(), "disk") {
		t.Errorf("message does not say why: %s", d.out.String())
	}
}

// TestOffsiteOutageRepaired takes the offsite down for several cycles and
// brings it back: no backup that existed only on the primary is pruned
// meanwhile (keep_within is 1s), and every missed copy is repaired and
// verifies.
func TestOffsiteOutageRepaired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	proxy := newProxy(t, strings.TrimPrefix(e.offsite.server.Endpoint, "http://"))
	e.offsite.server.Endpoint = proxy.url() // the daemon reaches offsite through the proxy
	jobs, _ := pgJob(t, "app", 300, "    schedule: \"*/3 * * * * *\"\n    retention: {keep_within: 1s, allow_short: true, min_keep: 2}\n")
	cfg := e.daemonConfig("daemon.yaml", jobs, daemonYAML+"  repair_interval: 2s\n")

	proxy.down()
	d := e.startDaemon("a", cfg)
	primaryIDs := func() []string {
		var ids []string
		for _, k := range e.primary.keys(t) {
			if strings.HasSuffix(k, "/manifest.json") {
				ids = append(ids, strings.Split(k, "/")[1])
			}
		}
		return ids
	}
	waitFor(t, 20*time.Second, "/readyz to answer 503 naming offsite", func() bool {
		code, body := d.get("/readyz")
		return code == 503 && strings.Contains(body, "offsite")
	})
	// Each cycle waits out the SDK retries against the refused offsite (about
	// 10 s here), so three partial runs take up to 40 s on a loaded machine.
	waitFor(t, 75*time.Second, "three partial backups", func() bool { return len(primaryIDs()) >= 3 })
	outage := primaryIDs()
	if n := len(e.offsite.keys(t)); n != 0 {
		t.Fatalf("offsite holds %d objects while down", n)
	}
	// Every backup of the outage is the only copy: none was pruned.
	time.Sleep(3 * time.Second)
	now := primaryIDs()
	for _, id := range outage {
		if !slices.Contains(now, id) {
			t.Errorf("backup %s, the only copy, was pruned while offsite was down", id)
		}
	}

	proxy.up()
	waitFor(t, 60*time.Second, "every outage backup repaired to offsite", func() bool {
		repaired := auditEvents(t, e, "a", "repair", "ok")
		for _, id := range outage {
			if !repaired[id] {
				return false
			}
		}
		return true
	})
	waitFor(t, 20*time.Second, "every remaining backup on both buckets", func() bool {
		for _, b := range e.list(cfg) {
			if len(b.Missing) > 0 {
				return false
			}
		}
		return true
	})
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Pruning resumed once the copies existed, down to min_keep (2) plus
	// the runs that ended meanwhile; what is left verifies on both.
	left := e.list(cfg)
	if len(left) < 2 {
		t.Fatalf("%d backups left, want at least min_keep 2", len(left))
	}
	for _, b := range left {
		out, _, code := runCmd(t, e.extraEnv, nil, cofferBin, "verify", "--config", cfg, "--job", "app", "--id", b.ID, "--identity", e.identity)
		if code != 0 {
			t.Errorf("verify %s: exit %d: %s", b.ID, code, out)
		}
	}
	for id := range auditEvents(t, e, "a", "prune", "deleted") {
		if slices.Contains(outage, id) && !auditEvents(t, e, "a", "repair", "ok")[id] {
			t.Errorf("backup %s was pruned without a repaired second copy", id)
		}
	}
}

// auditEvents returns the backup ids of daemon name's local audit events
// with action and outcome.
func auditEvents(t *testing.T, e *env, name, action, outcome string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, "state-"+name, "audit.jsonl"))
	if err != nil {
		return nil
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		var ev struct {
			Action   string `json:"action"`
			Outcome  string `json:"outcome"`
			BackupID string `json:"backup_id"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Action == action && ev.Outcome == outcome {
			ids[ev.BackupID] = true
		}
	}
	return ids
}

// TestDaemonNotifies: a failing job reaches the webhook, the Slack hook and
// its health-check pings (start, then fail); a good run pings success but
// sends no webhook (on_success is off).
func TestDaemonNotifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	var mu sync.Mutex
	var hits []string
	bodies := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, r.URL.Path)
		bodies[r.URL.Path] += string(b)
		mu.Unlock()
	}))
	defer srv.Close()
	seen := func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(hits, path)
	}

	good, _ := pgJob(t, "good", 100, "    schedule: \"0 2 * * 0\"\n    ping_url: "+srv.URL+"/ping/good\n    ping_insecure_http: true\n")
	bad := "  bad:\n    source: {type: exec, command: [sh, -c, 'echo dump; exit 3']}\n    schedule: \"0 2 * * 0\"\n    ping_url: " + srv.URL + "/ping/bad-token-xyz\n    ping_insecure_http: true\n"
	cfg := e.daemonConfig("notify.yaml", good+bad, daemonYAML+"notify:\n  insecure_http: true\n  webhooks: [\""+srv.URL+"/hook\"]\n  slack: [\""+srv.URL+"/slack\"]\n")
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "both jobs' pings", func() bool {
		return seen("/ping/bad-token-xyz/fail") && seen("/ping/good")
	})
	d.signal(syscall.SIGTERM)
	d.wait(15 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/ping/bad-token-xyz/start", "/ping/good/start", "/hook", "/slack"} {
		if !slices.Contains(hits, p) {
			t.Errorf("no request to %s (got %v)", p, hits)
		}
	}
	var ev struct {
		Job     string `json:"job"`
		Outcome string `json:"outcome"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(bodies["/hook"]), &ev); err != nil || ev.Job != "bad" || ev.Outcome != "failed" {
		t.Errorf("webhook body %q: want one failed event for job bad (%v)", bodies["/hook"], err)
	}
	if !strings.Contains(bodies["/slack"], "bad") || !strings.Contains(bodies["/slack"], "FAILED") {
		t.Errorf("slack text %q", bodies["/slack"])
	}
	if strings.Contains(d.out.String(), "bad-token-xyz") {
		t.Error("a ping URL (a secret) appears in the daemon's log")
	}
}
