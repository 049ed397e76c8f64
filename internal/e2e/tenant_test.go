package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// tenant is one job of TestTenantSeparation with its own key pair.
type tenant struct {
	job, identity, recipient string
	want                     map[string]string // table hashes of its database
}

// TestTenantSeparation backs up two tenants, each encrypted to its own
// key, with a third key as the global recipient. Each backup opens only
// with its tenant's identity, through Coffer and through the stock age
// CLI, on both destinations; the other tenant's key and the global key
// open nothing and restore nothing.
func TestTenantSeparation(t *testing.T) {
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite")) // e.identity is the global key
	global := tenant{job: "global", identity: e.identity, recipient: e.recipient}
	tenants := []tenant{e.newTenant("tenant-a", 2_000), e.newTenant("tenant-b", 3_000)}

	cfg := e.signingYAML() + "recipients:\n  - " + global.recipient + "\ndestinations:\n" + e.primary.yaml("primary") + e.offsite.yaml("offsite") + "jobs:\n"
	for _, tn := range tenants {
		db := filepath.Join(e.dir, tn.job+".db")
		cfg += "  " + tn.job + ":\n    source:\n" + sourceYAML(config.Source{Type: "sqlite", Path: db}) +
			"    recipients:\n      - " + tn.recipient + "\n"
	}
	e.config = filepath.Join(e.dir, "coffer.yaml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		e.backup(tn.job)
	}

	for _, owner := range tenants {
		// The manifest on each destination records only the job's own key.
		for _, b := range []*bucket{e.primary, e.offsite} {
			var stored struct {
				Manifest struct {
					Encryption struct{ Recipients []string } `json:"encryption"`
				} `json:"manifest"`
			}
			if err := json.Unmarshal(b.get(t, tenantKey(t, b, owner.job, "/manifest.json")), &stored); err != nil {
				t.Fatal(err)
			}
			if r := stored.Manifest.Encryption.Recipients; !slices.Equal(r, []string{owner.recipient}) {
				t.Fatalf("%s manifest on %s lists recipients %v, want only %s", owner.job, b.name, r, owner.recipient)
			}
		}

		for _, key := range append(slices.Clone(tenants), global) {
			name := owner.job + "/key=" + key.job
			opens := key.identity == owner.identity
			t.Run("coffer-restore/"+name, func(t *testing.T) {
				dir := t.TempDir()
				target := filepath.Join(dir, "restored.db")
				_, stderr, code := e.run("restore", "--job", owner.job, "--identity", key.identity, "--target", target)
				if opens {
					if code != 0 {
						t.Fatalf("exit %d, want 0", code)
					}
					if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, owner.want) {
						t.Fatalf("restored tables differ from %s's database", owner.job)
					}
					return
				}
				if code != 1 || !strings.Contains(stderr, "no identity matches") || !strings.Contains(stderr, owner.recipient) {
					t.Fatalf("exit %d, stderr %q; want exit 1 and a wrong-identity error naming %s", code, stderr, owner.recipient)
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Fatalf("a refused restore left %v in the target directory", left)
				}
			})
			t.Run("stock-age/"+name, func(t *testing.T) {
				for _, b := range []*bucket{e.primary, e.offsite} {
					payload := filepath.Join(t.TempDir(), "payload.age")
					if err := os.WriteFile(payload, b.get(t, tenantKey(t, b, owner.job, ".zst.age")), 0o600); err != nil {
						t.Fatal(err)
					}
					stock := filepath.Join(t.TempDir(), "stock.db")
					pipeline := fmt.Sprintf("set -o pipefail; %s -d -i %s %s | %s -d -q -o %s",
						testenv.Tool(t, "age"), key.identity, payload, testenv.Tool(t, "zstd"), stock)
					out, err := exec.Command("bash", "-c", pipeline).CombinedOutput()
					switch {
					case opens && err != nil:
						t.Fatalf("payload on %s: age -d with its own identity: %v\n%s", b.name, err, out)
					case opens:
						if got := dbtest.SQLiteTableHashes(t, stock); !maps.Equal(got, owner.want) {
							t.Fatalf("payload on %s: decrypted tables differ from %s's database", b.name, owner.job)
						}
					case err == nil:
						t.Fatalf("payload on %s: age -d opened it with another key", b.name)
					case !strings.Contains(string(out), "no identity matched"):
						t.Fatalf("payload on %s: age -d failed for another reason: %v\n%s", b.name, err, out)
					}
				}
			})
		}
	}
}

// newTenant makes a key pair with coffer keygen and a seeded SQLite
// database at e.dir/<job>.db.
func (e *env) newTenant(job string, rows int) tenant {
	e.t.Helper()
	tn := tenant{job: job, identity: filepath.Join(e.dir, job+"-identity.txt")}
	out, _, code := e.run("keygen", "-o", tn.identity)
	if code != 0 {
		e.t.Fatalf("keygen for %s: exit %d", job, code)
	}
	tn.recipient = strings.TrimSpace(out)
	db := filepath.Join(e.dir, job+".db")
	dbtest.SeedSQLite(e.t, db, rows)
	tn.want = dbtest.SQLiteTableHashes(e.t, db)
	return tn
}

// tenantKey returns the only key in b under job/ that ends in suffix.
func tenantKey(t *testing.T, b *bucket, job, suffix string) string {
	t.Helper()
	var found []string
	for _, k := range b.keys(t) {
		if strings.HasPrefix(k, job+"/") && strings.HasSuffix(k, suffix) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s holds %v under %s/ ending in %s; want exactly one", b.name, found, job, suffix)
	}
	return found[0]
}
