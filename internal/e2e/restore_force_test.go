package e2e

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// TestRestoreForceKeepsTargetWhenBucketPoisoned: `coffer restore --force`
// into a PostgreSQL database with rows of its own, from a backup whose
// payload is damaged inside in both MinIOs (manifests intact), fails with
// exit 1 and leaves the target's rows as they were, with no staging
// database left; once the copies are good again the same command replaces
// the target's rows with the backup's.
func TestRestoreForceKeepsTargetWhenBucketPoisoned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 5_000)
	want := dbtest.PostgresTableHashes(t, src)
	e.writeConfig("app", sourceYAML(src))
	e.backup("app")

	target := dbtest.CreatePostgresDB(t)
	tsrc := dbtest.PostgresSource(t, target)
	dbtest.SeedPostgres(t, tsrc, 300)
	before := dbtest.PostgresTableHashes(t, tsrc)

	good := map[*bucket][]byte{}
	for _, b := range []*bucket{e.primary, e.offsite} {
		key := b.payloadKey(t)
		data := b.get(t, key)
		good[b] = data
		bad := append([]byte(nil), data...)
		bad[len(bad)-200] ^= 1 // inside the last age chunk: found only mid-stream
		b.put(t, key, bad)
	}
	restore := func() (string, int) {
		_, stderr, code := e.run("restore", "--job", "app", "--latest", "--identity", e.identity, "--target", target, "--force")
		return stderr, code
	}
	stderr, code := restore()
	if code != 1 || !strings.Contains(stderr, "could not be restored from any destination") {
		t.Fatalf("restore --force from poisoned buckets: exit %d, want 1 naming every destination\n%s", code, stderr)
	}
	if got := dbtest.PostgresTableHashes(t, tsrc); !maps.Equal(got, before) {
		t.Errorf("target after a failed restore --force holds %d tables, want its own %d unchanged", len(got), len(before))
	}
	if left := pgDatabasesLike(t, target+"__coffer_"); len(left) != 0 {
		t.Errorf("staging databases left behind: %v", left)
	}

	for b, data := range good {
		b.put(t, b.payloadKey(t), data)
	}
	if stderr, code := restore(); code != 0 {
		t.Fatalf("restore --force from good copies: exit %d\n%s", code, stderr)
	}
	if got := dbtest.PostgresTableHashes(t, tsrc); !maps.Equal(got, want) {
		t.Error("target after restore --force does not hold the backup's rows")
	}
	if left := pgDatabasesLike(t, target+"__coffer_"); len(left) != 0 {
		t.Errorf("staging or old databases left behind: %v", left)
	}
}

// pgDatabasesLike lists the databases on the test server whose names start
// with prefix.
func pgDatabasesLike(t *testing.T, prefix string) []string {
	t.Helper()
	s := dbtest.PostgresSource(t, "postgres")
	conn := dbtest.PostgresConnect(t, s)
	rows, err := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}
