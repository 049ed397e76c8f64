package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// sourceYAML renders a database source as the body of a "source:" block.
func sourceYAML(src config.Source) string {
	s := fmt.Sprintf("      type: %s\n", src.Type)
	if src.Host != "" {
		s += fmt.Sprintf("      host: %q\n      port: %d\n      user: %s\n", src.Host, src.Port, src.User)
	}
	if src.Database != "" {
		s += fmt.Sprintf("      database: %s\n", src.Database)
	}
	if src.Path != "" {
		s += fmt.Sprintf("      path: %s\n", src.Path)
	}
	return s
}

// listJSON runs `coffer list --json`.
func listJSON(t *testing.T, e *env) []struct {
	ID           string   `json:"id"`
	Destinations []string `json:"destinations"`
	Missing      []string `json:"missing_from"`
} {
	t.Helper()
	out, _, code := e.run("list", "--json")
	var l struct {
		Backups []struct {
			ID           string   `json:"id"`
			Destinations []string `json:"destinations"`
			Missing      []string `json:"missing_from"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("list --json (exit %d): %v\n%s", code, err, out)
	}
	return l.Backups
}

func TestPostgresRoundTripAndStockTools(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 300_000)
	want := dbtest.PostgresTableHashes(t, src)
	e.writeConfig("app", sourceYAML(src))

	e.backup("app")
	backups := listJSON(t, e)
	if len(backups) != 1 || len(backups[0].Destinations) != 2 {
		t.Fatalf("list: %+v, want one backup on primary and offsite", backups)
	}
	if _, _, code := e.run("verify", "--job", "app", "--identity", e.identity); code != 0 {
		t.Fatalf("verify exit %d", code)
	}

	// Coffer's own restore into a new database.
	target := dbtest.CreatePostgresDB(t)
	dbtest.DropPostgresDB(t, target) // restore must create it
	if _, _, code := e.run("restore", "--job", "app", "--latest", "--identity", e.identity, "--target", target); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	if got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); !maps.Equal(got, want) {
		t.Fatalf("restored tables differ:\n got %v\nwant %v", got, want)
	}

	// Without Coffer: the stock age and zstd CLIs and pg_restore.
	payload := filepath.Join(e.dir, "payload.age")
	if err := os.WriteFile(payload, e.offsite.get(t, e.offsite.payloadKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	stock := dbtest.CreatePostgresDB(t)
	stockSrc := dbtest.PostgresSource(t, stock)
	pipeline := fmt.Sprintf("set -o pipefail; %s -d -i %s %s | %s -d | pg_restore --no-owner --exit-on-error -h %s -p %d -U %s -d %s",
		testenv.Tool(t, "age"), e.identity, payload, testenv.Tool(t, "zstd"), stockSrc.Host, stockSrc.Port, stockSrc.User, stock)
	if out, err := exec.Command("bash", "-c", pipeline).CombinedOutput(); err != nil {
		t.Fatalf("stock-tools restore: %v\n%s", err, out)
	}
	if got := dbtest.PostgresTableHashes(t, stockSrc); !maps.Equal(got, want) {
		t.Fatalf("stock-tools restore differs:\n got %v\nwant %v", got, want)
	}
}

func TestMariaDBRoundTrip(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreateMariaDB(t)
	src := dbtest.MariaDBSource(t, db)
	dbtest.SeedMariaDB(t, src, 50_000)
	want := dbtest.MariaDBTableHashes(t, src)
	e.writeConfig("shop", sourceYAML(src))

	e.backup("shop")
	target := dbtest.CreateMariaDB(t)
	if _, _, code := e.run("restore", "--job", "shop", "--identity", e.identity, "--target", target); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	if got := dbtest.MariaDBTableHashes(t, dbtest.MariaDBSource(t, target)); !maps.Equal(got, want) {
		t.Fatalf("restored tables differ:\n got %v\nwant %v", got, want)
	}
	// A non-empty target is refused without --force and left as it was.
	_, stderr, code := e.run("restore", "--job", "shop", "--identity", e.identity, "--target", target)
	if code == 0 || !strings.Contains(stderr, target) {
		t.Fatalf("restore into non-empty %s: exit %d, stderr %q; want a refusal naming it", target, code, stderr)
	}
}

func TestSQLiteRoundTripThroughStockTools(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	_, want := e.sqliteJob("lite", 20_000)
	e.backup("lite")
	restored := filepath.Join(t.TempDir(), "restored.db")
	if _, _, code := e.run("restore", "--job", "lite", "--identity", e.identity, "--target", restored); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
		t.Fatalf("restored tables differ:\n got %v\nwant %v", got, want)
	}
	payload := filepath.Join(e.dir, "payload.age")
	os.WriteFile(payload, e.primary.get(t, e.primary.payloadKey(t)), 0o600)
	stock := filepath.Join(t.TempDir(), "stock.db")
	pipeline := fmt.Sprintf("set -o pipefail; %s -d -i %s %s | %s -d -o %s", testenv.Tool(t, "age"), e.identity, payload, testenv.Tool(t, "zstd"), stock)
	if out, err := exec.Command("bash", "-c", pipeline).CombinedOutput(); err != nil {
		t.Fatalf("stock-tools restore: %v\n%s", err, out)
	}
	if got := dbtest.SQLiteTableHashes(t, stock); !maps.Equal(got, want) {
		t.Fatalf("stock-tools restore differs:\n got %v\nwant %v", got, want)
	}
}

// TestDumpKilledHalfway terminates pg_dump's connection mid-dump: the run
// fails, no manifest or payload is visible, no multipart upload is left.
func TestDumpKilledHalfway(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 1_500_000)
	e.writeConfig("app", sourceYAML(src))

	killed := make(chan error, 1)
	go func() { killed <- dbtest.TerminatePgDump(t, src, 60*time.Second) }()
	_, stderr, code := e.run("backup", "--job", "app")
	if err := <-killed; err != nil {
		t.Fatalf("could not terminate pg_dump: %v", err)
	}
	if code != 1 {
		t.Fatalf("backup exit %d, want 1 (failed)", code)
	}
	if !strings.Contains(stderr, "pg_dump") {
		t.Errorf("stderr does not mention pg_dump: %s", stderr)
	}
	for _, b := range []*bucket{e.primary, e.offsite} {
		if keys := b.keys(t); len(keys) != 0 {
			t.Errorf("bucket %s holds %v after a failed backup; want nothing", b.name, keys)
		}
		ups, err := b.store.ListMultipartUploads(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != 0 {
			t.Errorf("bucket %s has multipart uploads left: %v", b.name, ups)
		}
	}
	if b := listJSON(t, e); len(b) != 0 {
		t.Errorf("list shows %v after a failed backup", b)
	}
}

// TestOffsiteDown stops the offsite server before the run: the primary copy
// is committed, the run is partial (exit 3), list shows what is missing.
func TestOffsiteDown(t *testing.T) {
	offsite, stop := testenv.StartMinIO(t)
	e := newEnv(t, testenv.S3(t, "primary"), offsite)
	_, want := e.sqliteJob("lite", 5_000)
	stop()

	_, stderr, code := e.run("backup", "--job", "lite")
	if code != 3 {
		t.Fatalf("backup with offsite down: exit %d, want 3 (partial)", code)
	}
	if !strings.Contains(stderr, "offsite") {
		t.Errorf("stderr does not name the failed destination: %s", stderr)
	}
	backups := listJSON(t, e)
	if len(backups) != 1 || strings.Join(backups[0].Destinations, ",") != "primary" || strings.Join(backups[0].Missing, ",") != "offsite" {
		t.Fatalf("list = %+v, want one backup on primary, missing from offsite", backups)
	}
	// Asking for the (unreachable) offsite copy first falls back to primary.
	restored := filepath.Join(t.TempDir(), "r.db")
	stdout, _, code := e.run("restore", "--job", "lite", "--from", "offsite", "--identity", e.identity, "--target", restored)
	if code != 0 || !strings.Contains(stdout, "from primary") {
		t.Fatalf("restore --from offsite with offsite down: exit %d, %q; want it served from primary", code, stdout)
	}
	if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
		t.Fatal("restored tables differ")
	}
}

// TestFlippedByteFallsBack flips one byte of the primary payload: verify
// names it, restore falls back to offsite and the data is right.
func TestFlippedByteFallsBack(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	_, want := e.sqliteJob("lite", 20_000)
	e.backup("lite")
	key := e.primary.payloadKey(t)
	data := e.primary.get(t, key)
	data[len(data)/2] ^= 0x40
	e.primary.put(t, key, data)

	for _, identity := range []string{e.identity, ""} { // full check and ciphertext-only check
		args := []string{"verify", "--job", "lite", "--json"}
		if identity != "" {
			args = append(args, "--identity", identity)
		}
		out, _, code := e.run(args...)
		if code != 1 {
			t.Fatalf("verify of a flipped byte: exit %d, want 1", code)
		}
		var checks []struct {
			Destination string `json:"destination"`
			OK          bool   `json:"ok"`
			Error       string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &checks); err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			bad := c.Destination == "primary"
			if c.OK == bad || (bad && !strings.Contains(c.Error, "on primary")) {
				t.Fatalf("verify: %+v; want primary failed (named) and offsite ok", checks)
			}
		}
	}

	restored := filepath.Join(t.TempDir(), "r.db")
	stdout, stderr, code := e.run("restore", "--job", "lite", "--identity", e.identity, "--target", restored)
	if code != 0 {
		t.Fatalf("restore exit %d, want fallback to offsite", code)
	}
	if !strings.Contains(stdout, "from offsite") || !strings.Contains(stderr+stdout, "primary") {
		t.Fatalf("restore does not say offsite served it after primary failed:\n%s\n%s", stdout, stderr)
	}
	if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
		t.Fatal("restored tables differ")
	}
}

func TestWrongIdentityNamesRecipients(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.sqliteJob("lite", 100)
	e.backup("lite")
	other := filepath.Join(e.dir, "other.txt")
	if _, _, code := e.run("keygen", "-o", other); code != 0 {
		t.Fatal("keygen")
	}
	_, stderr, code := e.run("restore", "--job", "lite", "--identity", other, "-o", filepath.Join(e.dir, "out"))
	if code != 1 || !strings.Contains(stderr, e.recipient) {
		t.Fatalf("wrong identity: exit %d, stderr %q; want exit 1 naming %s", code, stderr, e.recipient)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "out")); err == nil {
		t.Fatal("a file was written with the wrong identity")
	}
}

// TestFallbackResetsDatabaseTarget flips a byte deep in the primary
// payload so the corruption shows only after pg_restore has received
// data: the target is reset and the offsite copy restores cleanly.
func TestFallbackResetsDatabaseTarget(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 100_000)
	want := dbtest.PostgresTableHashes(t, src)
	e.writeConfig("app", sourceYAML(src))
	e.backup("app")
	key := e.primary.payloadKey(t)
	data := e.primary.get(t, key)
	data[len(data)*3/4] ^= 0x01
	e.primary.put(t, key, data)

	target := dbtest.CreatePostgresDB(t)
	stdout, stderr, code := e.run("restore", "--job", "app", "--identity", e.identity, "--target", target)
	if code != 0 || !strings.Contains(stdout, "from offsite") {
		t.Fatalf("restore: exit %d; want success from offsite\n%s%s", code, stdout, stderr)
	}
	if got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); !maps.Equal(got, want) {
		t.Fatalf("restored tables differ after fallback:\n got %v\nwant %v", got, want)
	}
}

// backup runs `coffer backup --job job` and fails the test unless it
// exits 0.
func (e *env) backup(job string) {
	e.t.Helper()
	if _, _, code := e.run("backup", "--job", job); code != 0 {
		e.t.Fatalf("backup --job %s: exit %d, want 0", job, code)
	}
}

// sqliteJob seeds a SQLite database with rows rows, writes a config with
// one job backing it up, and returns its path and table hashes.
func (e *env) sqliteJob(job string, rows int) (string, map[string]string) {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "app.db")
	dbtest.SeedSQLite(e.t, path, rows)
	e.writeConfig(job, sourceYAML(config.Source{Type: "sqlite", Path: path}))
	return path, dbtest.SQLiteTableHashes(e.t, path)
}

// TestBlackHoledOffsite: the offsite accepts connections but never answers
// (a black-holed network path). The backup drops it after the job's
// stall_timeout and ends partial with the primary copy, instead of hanging.
func TestBlackHoledOffsite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	proxy := newProxy(t, strings.TrimPrefix(e.offsite.server.Endpoint, "http://"))
	e.offsite.server.Endpoint = proxy.url()
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 2_000)
	e.writeConfig("app", sourceYAML(src)+"    stall_timeout: 2s\n")
	proxy.hold()
	start := time.Now()
	_, stderr, code := e.run("backup", "--job", "app")
	took := time.Since(start)
	if code != 3 {
		t.Fatalf("backup with a black-holed offsite: exit %d, want 3 (partial)", code)
	}
	if !strings.Contains(stderr, "stalled") || !strings.Contains(stderr, "offsite") {
		t.Errorf("stderr does not say the offsite stalled: %s", stderr)
	}
	if took > 30*time.Second {
		t.Errorf("backup took %s with a 2s stall timeout", took)
	}
	t.Logf("partial after %s", took)
	proxy.release()
	if b := listJSON(t, e); len(b) != 1 || strings.Join(b[0].Destinations, ",") != "primary" {
		t.Errorf("list = %+v, want one backup on primary", b)
	}
}
