package e2e

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// TestRestoreWithPassphraseProtectedIdentity: the identity file is itself
// encrypted with a passphrase (as `age -p` does). Restore opens it with
// --passphrase-file (never argv); a wrong passphrase or a group-readable
// passphrase file is refused with a clear message and no secret in it.
// `coffer drill` opens the job's drill.identity_file with --passphrase-file
// when the config names no drill.passphrase_file.
func TestRestoreWithPassphraseProtectedIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db, want := e.sqliteJob("lite", 1_000)
	e.backup("lite")

	plain, err := os.ReadFile(e.identity)
	if err != nil {
		t.Fatal(err)
	}
	const passphrase = "canary-passphrase-7c1d"
	sr, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	sr.SetWorkFactor(12)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, sr)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	protected := filepath.Join(e.dir, "identity.age")
	write := func(path, data string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
	}
	write(protected, buf.String(), 0o600)
	good := filepath.Join(e.dir, "pass")
	write(good, passphrase+"\n", 0o600)
	wrong := filepath.Join(e.dir, "wrong")
	write(wrong, "not-it\n", 0o600)
	open := filepath.Join(e.dir, "open")
	write(open, passphrase+"\n", 0o644)

	restore := func(passFile string) (string, string, int) {
		return e.run("restore", "--job", "lite", "--identity", protected, "--passphrase-file", passFile,
			"--target", filepath.Join(t.TempDir(), "r.db"))
	}
	for _, tc := range []struct{ name, file, want string }{
		{"wrong passphrase", wrong, "wrong passphrase"},
		{"group-readable passphrase file", open, "chmod 600"},
	} {
		out, stderr, code := restore(tc.file)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", tc.name, code, stderr, tc.want)
		}
		if strings.Contains(out+stderr, passphrase) {
			t.Errorf("%s: the passphrase appears in the output", tc.name)
		}
	}

	target := filepath.Join(t.TempDir(), "r.db")
	out, stderr, code := e.run("restore", "--job", "lite", "--identity", protected, "--passphrase-file", good, "--target", target)
	if code != 0 {
		t.Fatalf("restore with the right passphrase: exit %d: %s", code, stderr)
	}
	if strings.Contains(out+stderr, passphrase) {
		t.Error("the passphrase appears in the output")
	}
	if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, want) {
		t.Error("restored tables differ")
	}

	// The drill's configured identity with the passphrase given on the
	// command line; the drill restores into a scratch file and passes.
	e.writeConfig("lite", sourceYAML(config.Source{Type: "sqlite", Path: db})+
		"    drill:\n      identity_file: "+protected+"\n")
	out, stderr, code = e.run("drill", "--job", "lite", "--json", "--passphrase-file", good)
	var r drillReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Result != "passed" || len(r.Tables) == 0 {
		t.Fatalf("drill with drill.identity_file and --passphrase-file: exit %d, report %+v (%v)\n%s", code, r, err, stderr)
	}
	if strings.Contains(out+stderr, passphrase) {
		t.Error("the passphrase appears in the drill's output")
	}
	_, stderr, code = e.run("drill", "--job", "lite", "--passphrase-file", wrong)
	if code != 2 || !strings.Contains(stderr, "wrong passphrase") {
		t.Errorf("drill with a wrong --passphrase-file: exit %d, %q; want 2 and \"wrong passphrase\"", code, stderr)
	}
}
