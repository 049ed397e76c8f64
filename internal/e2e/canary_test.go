package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// canaries are secret values planted in a configuration: none may show up
// anywhere Coffer writes or anything another user on the host can read.
type canaries map[string]string // name -> value

// newCanary returns a distinctive, random secret value of kind.
func newCanary(kind string) string {
	var b [8]byte
	rand.Read(b[:])
	return "canary-" + kind + "-" + hex.EncodeToString(b[:])
}

// find returns the names of the canaries s contains, sorted.
func (c canaries) find(s string) []string {
	var hit []string
	for name, v := range c {
		if strings.Contains(s, v) {
			hit = append(hit, name)
		}
	}
	slices.Sort(hit)
	return hit
}

// hide replaces every canary in s with its name, so a failure message
// does not repeat the secret.
func (c canaries) hide(s string) string {
	for name, v := range c {
		s = strings.ReplaceAll(s, v, "<"+name+">")
	}
	return s
}

// procScanner reads /proc/*/cmdline of every process on the host in a
// loop, looking for canaries, and notes the pg_dump and pg_restore runs
// whose argv or environment names one of marks (the test's role and
// databases), to prove it saw them. The environment may hold a password
// (PGPASSWORD is how it reaches the tools); only argv is checked for
// canaries, since any user on the host can read it.
type procScanner struct {
	secrets canaries
	marks   []string // names that identify this test's tool runs
	stop    chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	leaks map[string]bool         // "pid: argv" (canaries hidden)
	seen  map[string]map[int]bool // tool -> pids
}

func scanProcs(secrets canaries, marks ...string) *procScanner {
	p := &procScanner{secrets: secrets, marks: marks, stop: make(chan struct{}), done: make(chan struct{}),
		leaks: map[string]bool{}, seen: map[string]map[int]bool{}}
	go func() {
		defer close(p.done)
		for {
			p.scan()
			select {
			case <-p.stop:
				p.scan()
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *procScanner) scan() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		line := strings.Join(argv, " ")
		p.mu.Lock()
		if len(p.secrets.find(line)) > 0 {
			p.leaks[fmt.Sprintf("pid %d: %s", pid, p.secrets.hide(line))] = true
		}
		p.mu.Unlock()
		tool := filepath.Base(argv[0])
		if (tool != "pg_dump" && tool != "pg_restore") || slices.Contains(argv, "--version") {
			continue
		}
		// Ours if its argv or environment (PGUSER, PGDATABASE) names a mark.
		environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		for _, m := range p.marks {
			if strings.Contains(line, m) || strings.Contains(string(environ), "="+m+"\x00") {
				p.mu.Lock()
				if p.seen[tool] == nil {
					p.seen[tool] = map[int]bool{}
				}
				p.seen[tool][pid] = true
				p.mu.Unlock()
				break
			}
		}
	}
}

// finish stops the scanner and returns what it found leaking and how many
// runs of each tool it saw.
func (p *procScanner) finish() (leaks []string, seen map[string]int) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	seen = map[string]int{}
	for tool, pids := range p.seen {
		seen[tool] = len(pids)
	}
	return slices.Sorted(maps.Keys(p.leaks)), seen
}

// canaryRole creates a PostgreSQL login role with password pw that can
// read every database and create new ones, dropped at cleanup (register
// it before the databases it will own).
func canaryRole(t *testing.T, pw string) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	role := "coffer_canary_" + hex.EncodeToString(b[:])
	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	ctx := context.Background()
	id := pgx.Identifier{role}.Sanitize()
	for _, q := range []string{
		"CREATE ROLE " + id + " LOGIN CREATEDB PASSWORD '" + pw + "'",
		"GRANT pg_read_all_data TO " + id,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.ReplaceAll(q, pw, "<pw>"), err)
		}
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, testenv.PostgresURL(t))
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+id); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	return role
}

// TestSecretsNeverLeak plants canary secrets (the S3 secret key, a
// PostgreSQL password, an exec source's environment value, webhook, Slack
// and ping URL tokens, a webhook URL password) in a configuration and runs
// the daemon and the CLI through a good backup, a restore, failing sources
// and a failing upload. No process's argv, no stdout or stderr, no log
// line, no file in the state directory, no stored object and no
// notification body may contain any of them.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	secrets := canaries{
		"s3 secret key": e.primary.server.SecretKey,
		"pg password":   newCanary("pgpass"),
		"exec env":      newCanary("execenv"),
		"webhook token": newCanary("hook"),
		"webhook pw":    newCanary("hookpw"),
		"slack token":   newCanary("slack"),
		"ping token":    newCanary("ping"),
	}
	if len(secrets["s3 secret key"]) < 12 {
		t.Fatalf("the test S3 secret key is too short to be a distinctive canary")
	}

	// Notification receiver. The Slack URL answers 404 quoting the path,
	// as some servers do: the error Coffer logs must not repeat it.
	var mu sync.Mutex
	hits := map[string]int{}
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits[secrets.hide(r.URL.Path)]++
		bodies = append(bodies, string(b))
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/slack/") {
			http.Error(w, "no such hook: "+r.URL.Path, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	hit := func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		return hits[path] > 0
	}

	role := canaryRole(t, secrets["pg password"])
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 5_000)
	want := dbtest.PostgresTableHashes(t, src)
	target := dbtest.CreatePostgresDB(t)
	dbtest.DropPostgresDB(t, target) // restore creates it
	scan := scanProcs(secrets, role, db, target)

	pg := func(database string) string {
		return fmt.Sprintf("      type: postgres\n      host: %q\n      port: %d\n      user: %s\n      password: %s\n      database: %s\n",
			src.Host, src.Port, role, secrets["pg password"], database)
	}
	ping := func(job string) string {
		return "    ping_url: " + srv.URL + "/ping/" + secrets["ping token"] + "/" + job + "\n    ping_insecure_http: true\n"
	}
	weekly := "    schedule: \"0 2 * * 0\"\n"
	jobs := "  good:\n    source:\n" + pg(db) + weekly + ping("good") + "    destinations: [primary, offsite]\n" +
		"  badsrc:\n    source:\n" + pg(db+"_missing") + weekly + ping("badsrc") + "    destinations: [primary, offsite]\n" +
		"  badexec:\n    source:\n      type: exec\n      command: [sh, -c, 'echo \"login failed with $API_TOKEN\" >&2; exit 1']\n" +
		"      env: {API_TOKEN: " + secrets["exec env"] + "}\n" + weekly + ping("badexec") + "    destinations: [primary, offsite]\n" +
		"  badup:\n    source:\n" + pg(db) + weekly + ping("badup") + "    destinations: [primary, down]\n"
	down := *e.offsite
	down.server.Endpoint = "http://" + freeAddr(t) // nothing listens there
	stateDir := filepath.Join(e.dir, "state")
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	cfg := e.header() + "destinations:\n" + e.primary.yaml("primary") + e.offsite.yaml("offsite") + down.yaml("down") +
		"jobs:\n" + jobs + "daemon:\n" + daemonYAML + "  state_dir: " + stateDir + "\n" +
		"notify:\n  on_success: true\n  insecure_http: true\n" +
		"  webhooks: [\"http://coffer:" + secrets["webhook pw"] + "@" + hostPort + "/hook/" + secrets["webhook token"] + "\"]\n" +
		"  slack: [\"" + srv.URL + "/slack/" + secrets["slack token"] + "\"]\n"
	e.config = filepath.Join(e.dir, "coffer.yaml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// One attempt per S3 request: the SDK's backoff on the closed port
	// would otherwise cost seconds per request and prove nothing more.
	e.extraEnv = append(e.extraEnv, listenPlaceholder, "AWS_MAX_ATTEMPTS=1")

	outputs := map[string]string{} // where -> text
	run := func(wantCode int, args ...string) string {
		t.Helper()
		stdout, stderr, code := e.run(args...)
		name := strings.Join(args, " ")
		outputs[name+": stdout"], outputs[name+": stderr"] = stdout, stderr
		if code != wantCode {
			t.Errorf("coffer %s: exit %d, want %d", name, code, wantCode)
		}
		return stderr
	}

	// The daemon: every job runs once at start (no backup yet), notifies
	// and pings.
	d := e.startDaemon("canary", e.config)
	waitFor(t, 60*time.Second, "every job's final ping", func() bool {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited (%d) before every job ran:\n%s", d.code, secrets.hide(d.out.String()))
		default:
		}
		return hit("/ping/<ping token>/good") && hit("/ping/<ping token>/badsrc/fail") &&
			hit("/ping/<ping token>/badexec/fail") && hit("/ping/<ping token>/badup/fail")
	})
	waitFor(t, 10*time.Second, "the webhook and Slack notifications", func() bool {
		return hit("/hook/<webhook token>") && hit("/slack/<slack token>")
	})
	// What the daemon serves over HTTP (readiness names failing
	// destinations with their errors).
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		code, body := d.get(path)
		if code == 0 {
			t.Errorf("GET %s: %s", path, body)
		}
		outputs["daemon GET "+path] = body
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM, want 0", code)
	}
	outputs["daemon log"] = d.out.String()
	if len(d.logLines("")) == 0 {
		t.Error("the daemon wrote no JSON log lines: nothing was checked")
	}

	// The CLI: config check, the same runs, a restore, list and verify.
	run(0, "config", "check")
	run(0, "config", "check", "--json")
	run(0, "backup", "--job", "good")
	run(1, "backup", "--job", "badsrc")
	if stderr := run(1, "backup", "--job", "badexec"); !strings.Contains(stderr, "login failed with [REDACTED]") {
		t.Errorf("a failed exec source's message should quote its output with the secret replaced: %s", secrets.hide(stderr))
	}
	if stderr := run(3, "backup", "--job", "badup"); !strings.Contains(stderr, "down") {
		t.Errorf("a partial backup should name the failed destination: %s", secrets.hide(stderr))
	}
	run(0, "restore", "--job", "good", "--latest", "--identity", e.identity, "--target", target)
	run(1, "list", "--json") // "down" cannot be listed: exit 1, the rest still shown
	run(0, "verify", "--job", "good", "--identity", e.identity)
	run(0, "audit", "--format", "json")
	if got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); !maps.Equal(got, want) {
		t.Error("the restored database differs from the source")
	}

	leaks, seen := scan.finish()
	for _, l := range leaks {
		t.Errorf("a canary is in a process's argv: %s", l)
	}
	// The daemon and the CLI each dumped good and badup (and tried
	// badsrc); one restore.
	if seen["pg_dump"] < 4 || seen["pg_restore"] < 1 {
		t.Errorf("the /proc scan saw %d pg_dump and %d pg_restore runs; want at least 4 and 1", seen["pg_dump"], seen["pg_restore"])
	}

	// The state directory (audit log and anything else kept there).
	nstate := 0
	filepath.WalkDir(stateDir, func(path string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			data, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Error(rerr)
			}
			outputs["state file "+path] = string(data)
			nstate++
		}
		return nil
	})
	if _, ok := outputs["state file "+filepath.Join(stateDir, "audit.jsonl")]; !ok {
		t.Errorf("no audit log in %s (%d files): nothing was checked", stateDir, nstate)
	}
	// Every object the runs stored (manifests, audit trail, payloads).
	for _, b := range []*bucket{e.primary, e.offsite} {
		for _, k := range b.keys(t) {
			outputs[b.name+" key "+k] = k
			outputs[b.name+" object "+k] = string(b.get(t, k))
		}
	}
	mu.Lock()
	for i, body := range bodies {
		outputs[fmt.Sprintf("notification body %d", i)] = body
	}
	mu.Unlock()

	for _, where := range slices.Sorted(maps.Keys(outputs)) {
		text := outputs[where]
		for _, name := range secrets.find(text) {
			i := strings.Index(text, secrets[name])
			from, to := max(i-200, 0), min(i+len(secrets[name])+200, len(text))
			t.Errorf("%s leaks the %s: ...%s...", where, name, secrets.hide(text[from:to]))
		}
	}
	t.Logf("checked %d outputs; /proc scan saw %v", len(outputs), seen)
}
