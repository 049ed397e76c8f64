package snapshot_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

func TestMySQLRoundTrip(t *testing.T) {
	src := dbtest.MariaDBSource(t, dbtest.CreateMariaDB(t))
	dbtest.SeedMariaDB(t, src, 20000)
	want := dbtest.MariaDBTableHashes(t, src)

	info, data := dump(t, src)
	if info.Format != "sql" || info.Kind != "mysql" || info.Database != src.Database {
		t.Fatalf("Info = %+v", info)
	}
	target := src.Database + "_r"
	t.Cleanup(func() { dbtest.DropMariaDB(t, target) })
	load(t, info, src, target, data)
	sameHashes(t, want, dbtest.MariaDBTableHashes(t, dbtest.MariaDBSource(t, target)))
}

func TestMySQLLoaderRefusesNonEmpty(t *testing.T) {
	src := dbtest.MariaDBSource(t, dbtest.CreateMariaDB(t))
	dbtest.SeedMariaDB(t, src, 10)
	info := dumpinfo.Info{Kind: "mysql", Format: "sql"}
	ctx := context.Background()

	l, err := snapshot.NewLoader(info, src, src.Database, false)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Prepare(ctx)
	if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), src.Database) {
		t.Fatalf("Prepare on a non-empty database: %v, want an error naming it and --force", err)
	}
	l, _ = snapshot.NewLoader(info, src, src.Database, true)
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("forced Prepare: %v", err)
	}
	l, _ = snapshot.NewLoader(info, src, src.Database, false)
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("Prepare on an empty database: %v", err)
	}
}

func TestMySQLLoadReadErrorFails(t *testing.T) {
	src := dbtest.MariaDBSource(t, dbtest.CreateMariaDB(t))
	dbtest.SeedMariaDB(t, src, 20000)
	want := dbtest.MariaDBTableHashes(t, src)
	info, data := dump(t, src)

	target := src.Database + "_f"
	t.Cleanup(func() { dbtest.DropMariaDB(t, target) })
	// The target as a URL this time.
	l, err := snapshot.NewLoader(info, config.Source{}, strings.TrimSuffix(os.Getenv("COFFER_TEST_MARIADB"), "/")+"/"+target, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	err = l.Load(ctx, failAfter(data, len(data)*2/3))
	if !errors.Is(err, errBoom) {
		t.Fatalf("Load from a failing reader: %v, want errBoom", err)
	}
	noChild(t, "mariadb")
	got := dbtest.MariaDBTableHashes(t, dbtest.MariaDBSource(t, target))
	if got["orders"] == want["orders"] && got["routines"] == want["routines"] {
		t.Fatal("a failed load left the target looking complete")
	}
	if err := l.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("Prepare after Reset: %v", err)
	}
}

// The password reaches mariadb-dump through a 0600 defaults file named by
// the first argument, never argv, and the file is removed afterwards.
func TestMySQLPasswordNotInArgv(t *testing.T) {
	db := dbtest.CreateMariaDB(t)
	src := dbtest.MariaDBSource(t, db)
	dbtest.SeedMariaDB(t, src, 20000)

	const password = `my "Secret" pw#1 'q' \x`
	user := db + "_u"
	admin := dbtest.MariaDBOpen(t, dbtest.MariaDBSource(t, ""))
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'my \"Secret\" pw#1 ''q'' \\\\x'",
		"GRANT ALL ON `" + db + "`.* TO '" + user + "'@'%'",
		"GRANT SELECT ON mysql.proc TO '" + user + "'@'%'", // SHOW CREATE PROCEDURE
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })

	src.User, src.Password = user, config.NewSecret(password)
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	pr, done := blockedDump(t, s)
	c := findChild(t, "mariadb-dump")
	for _, a := range c.cmdline {
		if strings.Contains(a, password) || strings.Contains(a, "Secret") {
			t.Errorf("mariadb-dump argv holds the password: %q", c.cmdline)
		}
	}
	cnf, ok := strings.CutPrefix(c.cmdline[1], "--defaults-extra-file=")
	if !ok {
		t.Fatalf("first argument is %q, want --defaults-extra-file", c.cmdline[1])
	}
	fi, err := os.Stat(cnf)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("defaults file mode %v, want 0600", fi.Mode())
	}
	io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("Dump as %s (the password must survive the defaults file): %v", user, err)
	}
	if _, err := os.Stat(cnf); !os.IsNotExist(err) {
		t.Errorf("defaults file %s not removed: %v", cnf, err)
	}

	// A wrong password fails, and the error does not quote it.
	src.Password = config.NewSecret("wrong-Password-123")
	s, _ = snapshot.NewSource(src)
	_, err = s.Dump(context.Background(), io.Discard)
	if err == nil {
		t.Fatal("Dump with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-Password-123") {
		t.Fatalf("error quotes the password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}
