package e2e

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
)

// forgeManifest returns the manifest object stored under key in b, signed
// again with signer: the same content, a key nobody trusts.
func (e *env) forgeManifest(b *bucket, key string, signer *sign.Signer) []byte {
	e.t.Helper()
	pub, err := sign.ParsePublicKey(e.signingPub)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := manifest.Decode(b.get(e.t, key), manifest.Trust{Verifier: sign.NewVerifier(pub)})
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := m.Sign(signer)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

// TestBadManifestSignatureRefused is the fault "manifest with a bad
// signature": the primary manifest replaced by one signed with another
// key, or edited after signing (another payload SHA-256). verify and
// restore refuse it with a message naming the object and destination,
// restore serves the offsite's good copy, and only
// --insecure-skip-signature reads a bad manifest, warning on stderr.
func TestBadManifestSignatureRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	_, want := e.sqliteJob("lite", 2_000)
	e.backup("lite")
	id := listJSON(t, e)[0].ID
	key := manifest.Key("lite", id)
	good := e.primary.get(t, key)

	otherKey := filepath.Join(e.dir, "intruder.key")
	if _, _, code := e.run("keygen", "--signing-key", otherKey); code != 0 {
		t.Fatal("keygen --signing-key")
	}
	intruder, err := sign.LoadSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	forged := e.forgeManifest(e.primary, key, intruder)
	var env struct {
		Manifest struct {
			Payload struct{ SHA256 string } `json:"payload"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal(good, &env); err != nil || len(env.Manifest.Payload.SHA256) != 64 {
		t.Fatalf("stored manifest: %v", err)
	}
	edited := bytes.ReplaceAll(good, []byte(env.Manifest.Payload.SHA256), []byte(strings.Repeat("0", 64)))

	restoreTo := func(extra ...string) (string, string, int, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "restored.db")
		stdout, stderr, code := e.run(append([]string{"restore", "--job", "lite", "--identity", e.identity, "--target", out}, extra...)...)
		return stdout, stderr, code, out
	}
	for _, tc := range []struct {
		name, want string
		object     []byte
	}{
		{"signed with another key", key + " on primary: signature: signed by an unknown key " + intruder.Public().ID(), forged},
		{"edited after signing", key + " on primary: signature: bad signature by key", edited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.primary.put(t, key, tc.object)
			out, _, code := e.run("verify", "--job", "lite", "--identity", e.identity, "--json")
			var checks []struct {
				Destination, Error string
				OK                 bool
			}
			if err := json.Unmarshal([]byte(out), &checks); err != nil || code != 1 || len(checks) != 2 {
				t.Fatalf("verify: exit %d, %v; want 1 with two checks", code, err)
			}
			if checks[0].OK || !strings.Contains(checks[0].Error, tc.want) || !checks[1].OK {
				t.Errorf("verify checks %+v: want primary refused with %q, offsite ok", checks, tc.want)
			}
			stdout, _, code, restored := restoreTo()
			if code != 0 || !strings.Contains(stdout, "from offsite") || !strings.Contains(stdout, tc.want) {
				t.Fatalf("restore: exit %d, %q; want it served from offsite, naming the refused primary manifest", code, stdout)
			}
			if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
				t.Error("restored tables differ from the source")
			}
		})
	}

	// Both copies bad: refused, unless the signature check is skipped.
	e.primary.put(t, key, forged)
	e.offsite.put(t, key, e.forgeManifest(e.offsite, key, intruder))
	_, stderr, code, _ := restoreTo()
	if code != 1 || !strings.Contains(stderr, key+" on primary: signature") || !strings.Contains(stderr, key+" on offsite: signature") ||
		!strings.Contains(stderr, "--insecure-skip-signature") {
		t.Fatalf("restore with both manifests forged: exit %d, stderr %q; want 1 naming both and the emergency flag", code, stderr)
	}
	stdout, stderr, code, restored := restoreTo("--insecure-skip-signature")
	if code != 0 || !strings.Contains(stdout, "from primary") {
		t.Fatalf("restore --insecure-skip-signature: exit %d, %q", code, stdout)
	}
	if !strings.Contains(stderr, "manifest signature NOT verified") || !strings.Contains(stderr, key+" on primary") {
		t.Errorf("restore --insecure-skip-signature did not warn naming the manifest:\n%s", stderr)
	}
	if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
		t.Error("restored tables differ from the source")
	}
	if out, _, code := e.run("list"); code != 0 || !strings.Contains(out, "NOT TRUSTED, NOT USED") || !strings.Contains(out, key+"  signature: signed by an unknown key") {
		t.Errorf("list with forged manifests: exit %d, want the signature problem shown:\n%s", code, out)
	}
}

// TestRollbackWarned: after verify has seen the newest backup (seq 3),
// its manifests disappear from both buckets, so an older backup is the
// newest visible: verify warns, on stderr and in --json, and still passes.
func TestRollbackWarned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.sqliteJob("lite", 500)
	for range 3 {
		e.backup("lite")
	}
	backups := listJSON(t, e)
	if len(backups) != 3 {
		t.Fatalf("%d backups, want 3", len(backups))
	}
	_, stderr, code := e.run("verify", "--job", "lite")
	if code != 0 || strings.Contains(stderr, "rollback") {
		t.Fatalf("verify of the newest: exit %d, stderr %q", code, stderr)
	}
	newest, older := backups[2].ID, backups[1].ID
	for _, b := range []*bucket{e.primary, e.offsite} {
		if err := b.store.Delete(t.Context(), manifest.Key("lite", newest)); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code := e.run("verify", "--job", "lite", "--json")
	warning := "possible rollback of job lite: newest visible backup is seq 2 (id " + older + "), but seq 3 (id " + newest + ") was seen on"
	if code != 0 || !strings.Contains(stderr, warning) {
		t.Fatalf("verify after the newest backup vanished: exit %d, stderr %q; want 0 and %q", code, stderr, warning)
	}
	var checks []struct {
		Sequence int64    `json:"sequence"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks) != 2 {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	for _, c := range checks {
		if c.Sequence != 2 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], warning) {
			t.Errorf("check %+v: want sequence 2 and the rollback warning", c)
		}
	}
	if _, stderr, _ := e.run("list"); !strings.Contains(stderr, warning) {
		t.Errorf("list did not warn about the rollback:\n%s", stderr)
	}
}

// TestSigningRequired: a configuration without a signing key cannot back
// up, one trusting no key cannot read, and a world-readable key file is
// refused with the fix; all exit 2.
func TestSigningRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.sqliteJob("lite", 100)
	e.backup("lite")
	signed, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := bytes.Replace(signed, []byte(e.signingYAML()), nil, 1)
	if bytes.Equal(unsigned, signed) {
		t.Fatal("the config has no signing section to remove")
	}
	if err := os.WriteFile(e.config, unsigned, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run("backup", "--job", "lite"); code != 2 || !strings.Contains(stderr, "signing.key_file is not set") {
		t.Errorf("backup without signing: exit %d, %q", code, stderr)
	}
	if _, stderr, code := e.run("verify", "--job", "lite"); code != 2 || !strings.Contains(stderr, "trusts no signing key") {
		t.Errorf("verify without trusted keys: exit %d, %q", code, stderr)
	}
	if _, _, code := e.run("verify", "--job", "lite", "--insecure-skip-signature"); code != 0 {
		t.Errorf("verify --insecure-skip-signature without trusted keys: exit %d, want 0", code)
	}

	if err := os.WriteFile(e.config, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.signingKey, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("config", "check")
	if code != 2 || !strings.Contains(stderr, "signing.key_file") || !strings.Contains(stderr, "chmod 600 "+e.signingKey) {
		t.Errorf("config check with a world-readable signing key: exit %d, %q", code, stderr)
	}
}
