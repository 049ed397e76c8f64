package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// TestKeyRotation follows the documented rotation: back up to the old key,
// add the new key, back up, remove the old key, back up. Each backup opens
// with exactly the identities it was encrypted to: the backups made before
// the rotation stay restorable with the old identity, the one made after
// only with the new one.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite")) // e.identity is the old key
	oldID, oldKey := e.identity, e.recipient
	newID := filepath.Join(e.dir, "new-identity.txt")
	out, _, code := e.run("keygen", "-o", newID)
	if code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	newKey := strings.TrimSpace(out)

	db := filepath.Join(e.dir, "app.db")
	dbtest.SeedSQLite(t, db, 1_000)
	want := dbtest.SQLiteTableHashes(t, db)
	phases := []struct {
		name       string
		recipients []string
	}{
		{"before", []string{oldKey}},
		{"during", []string{oldKey, newKey}},
		{"after", []string{newKey}},
	}
	ids := map[string]string{}
	for _, ph := range phases {
		cfg := e.signingYAML() + "recipients:\n"
		for _, r := range ph.recipients {
			cfg += "  - " + r + "\n"
		}
		cfg += "destinations:\n" + e.primary.yaml("primary") + e.offsite.yaml("offsite") +
			"jobs:\n  app:\n    source:\n" + sourceYAML(config.Source{Type: "sqlite", Path: db})
		e.config = filepath.Join(e.dir, "coffer.yaml")
		if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		e.backup("app")
		b := listJSON(t, e)
		ids[ph.name] = b[len(b)-1].ID
	}

	// verify names which identity opens each backup.
	both := filepath.Join(e.dir, "both-identities.txt")
	oldData, _ := os.ReadFile(oldID)
	newData, _ := os.ReadFile(newID)
	if err := os.WriteFile(both, append(append(oldData, '\n'), newData...), 0o600); err != nil {
		t.Fatal(err)
	}
	for phase, wantKeys := range map[string][]string{"before": {oldKey}, "during": {oldKey, newKey}, "after": {newKey}} {
		out, _, code := e.run("verify", "--job", "app", "--id", ids[phase], "--identity", both, "--json")
		var checks []struct {
			OK       bool     `json:"ok"`
			OpenedBy []string `json:"opened_by"`
		}
		if err := json.Unmarshal([]byte(out), &checks); err != nil || code != 0 || len(checks) != 2 {
			t.Fatalf("verify %s: exit %d, %v: %s", phase, code, err, out)
		}
		for _, c := range checks {
			if !c.OK || !slices.Equal(c.OpenedBy, wantKeys) {
				t.Errorf("verify %s: ok %v, opened by %v; want %v", phase, c.OK, c.OpenedBy, wantKeys)
			}
		}
	}

	opens := map[string]map[string]bool{ // phase -> identity -> opens
		"before": {oldID: true, newID: false},
		"during": {oldID: true, newID: true},
		"after":  {oldID: false, newID: true},
	}
	for phase, byIdentity := range opens {
		for identity, ok := range byIdentity {
			target := filepath.Join(t.TempDir(), "r.db")
			_, stderr, code := e.run("restore", "--job", "app", "--id", ids[phase], "--identity", identity, "--target", target)
			switch {
			case ok && code != 0:
				t.Errorf("backup %s with %s: exit %d: %s", phase, filepath.Base(identity), code, stderr)
			case ok:
				if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, want) {
					t.Errorf("backup %s with %s: tables differ", phase, filepath.Base(identity))
				}
			case code == 0:
				t.Errorf("backup %s opened with %s, which it was not encrypted to", phase, filepath.Base(identity))
			}
		}
	}
}
