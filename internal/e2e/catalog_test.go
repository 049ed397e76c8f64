package e2e

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
)

// farFutureKey is a manifest key anyone with write access to a bucket can
// plant: the newest id there can be, any content.
const farFutureKey = "lite/29991231T235959.999Z-0000/manifest.json"

// untrustedJSON is one entry of the "untrusted" lists of --json output.
type untrustedJSON struct {
	Job         string `json:"job"`
	Destination string `json:"destination"`
	Key         string `json:"key"`
	ID          string `json:"id"`
	Reason      string `json:"reason"`
}

// plantAndForge plants farFutureKey (garbage) on the primary and, on the
// offsite, a whole newer backup (a copy of the payload of backup id)
// whose manifest is signed by a key nobody trusts. It returns the forged
// backup's manifest key.
func (e *env) plantAndForge(id string) string {
	e.t.Helper()
	e.primary.put(e.t, farFutureKey, []byte(`{"format_version":2,"manifest":{"id":"29991231T235959.999Z-0000"}}`))
	pub, err := sign.ParsePublicKey(e.signingPub)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := manifest.Decode(e.offsite.get(e.t, manifest.Key("lite", id)), manifest.Trust{Verifier: sign.NewVerifier(pub)})
	if err != nil {
		e.t.Fatal(err)
	}
	forged := *m
	forged.ID = manifest.NewID(time.Date(2999, 12, 30, 0, 0, 0, 0, time.UTC))
	forged.Payload.Key = manifest.PayloadKey("lite", forged.ID, m.Source.Format)
	forged.Copies = []manifest.Copy{{Destination: "offsite", Key: forged.Payload.Key, Bytes: m.Payload.Bytes, SHA256: m.Payload.SHA256}}
	e.offsite.put(e.t, forged.Payload.Key, e.offsite.get(e.t, m.Payload.Key))
	intruderKey := filepath.Join(e.dir, "intruder.key")
	if _, _, code := e.run("keygen", "--signing-key", intruderKey); code != 0 {
		e.t.Fatal("keygen --signing-key")
	}
	intruder, err := sign.LoadSigner(intruderKey)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := forged.Sign(intruder)
	if err != nil {
		e.t.Fatal(err)
	}
	key := manifest.Key("lite", forged.ID)
	e.offsite.put(e.t, key, data)
	return key
}

// checkUntrusted checks that got names exactly the forged key on the
// offsite (signature) and the planted key on the primary, in that order.
func checkUntrusted(t *testing.T, what string, got []untrustedJSON, forgedKey string) {
	t.Helper()
	if len(got) != 2 ||
		got[0].Destination != "offsite" || got[0].Key != forgedKey || !strings.HasPrefix(got[0].Reason, "signature: signed by an unknown key") ||
		got[1].Destination != "primary" || got[1].Key != farFutureKey || got[1].ID != "29991231T235959.999Z-0000" || got[1].Reason == "" {
		t.Errorf("%s untrusted = %+v, want the forged key on offsite (signature) and the planted key on primary, with reasons", what, got)
	}
}

// TestPlantedKeysNeverChosen: after two real backups of SQLite to the two
// MinIOs, a far-future key is planted on the primary and a newer, whole
// backup with a forged manifest on the offsite. restore --latest restores
// the second real backup and says the planted keys were not used; list,
// status and verify (--json) list both keys with their reasons; status
// exits 1.
func TestPlantedKeysNeverChosen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db, _ := e.sqliteJob("lite", 500)
	e.backup("lite")
	if _, err := dbtest.SQLiteOpen(t, db).Exec(`INSERT INTO customers (name, created_at) VALUES ('late', '2026-12-01')`); err != nil {
		t.Fatal(err)
	}
	want := dbtest.SQLiteTableHashes(t, db)
	e.backup("lite")
	backups := listJSON(t, e)
	if len(backups) != 2 {
		t.Fatalf("%d backups, want 2", len(backups))
	}
	newest := backups[1].ID
	forgedKey := e.plantAndForge(newest)

	restored := filepath.Join(t.TempDir(), "restored.db")
	out, stderr, code := e.run("restore", "--job", "lite", "--latest", "--identity", e.identity, "--target", restored, "--json")
	var rep struct {
		ID        string          `json:"id"`
		Untrusted []untrustedJSON `json:"untrusted"`
		Attempts  []struct {
			Destination, Error string
		} `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.ID != newest {
		t.Fatalf("restore --latest: exit %d, %v, id %q; want 0 and the newest verified backup %s", code, err, rep.ID, newest)
	}
	if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
		t.Fatal("restored tables differ from the second backup's")
	}
	if len(rep.Attempts) != 1 || rep.Attempts[0].Error != "" {
		t.Errorf("attempts %+v, want one, successful (nothing tried from the planted keys)", rep.Attempts)
	}
	checkUntrusted(t, "restore", rep.Untrusted, forgedKey)
	if !strings.Contains(stderr, "not used (not trusted): "+farFutureKey+" on primary") || !strings.Contains(stderr, "not used (not trusted): "+forgedKey+" on offsite") {
		t.Errorf("restore stderr does not say the planted keys were not used:\n%s", stderr)
	}

	out, _, code = e.run("list", "--json")
	var l struct {
		Backups []struct {
			ID string `json:"id"`
		} `json:"backups"`
		Untrusted []untrustedJSON `json:"untrusted"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || len(l.Backups) != 2 || l.Backups[1].ID != newest {
		t.Fatalf("list --json: exit %d, %v, %+v; want the two real backups", code, err, l.Backups)
	}
	checkUntrusted(t, "list", l.Untrusted, forgedKey)
	for _, u := range l.Untrusted {
		if u.Job != "lite" {
			t.Errorf("list untrusted %+v: want job lite", u)
		}
	}
	if out, _, _ := e.run("list"); !strings.Contains(out, "NOT TRUSTED, NOT USED") || !strings.Contains(out, farFutureKey) || !strings.Contains(out, forgedKey) {
		t.Errorf("list does not show the untrusted keys:\n%s", out)
	}

	out, _, code = e.run("status", "--json")
	var st []struct {
		LastBackup struct {
			ID string `json:"id"`
		} `json:"last_backup"`
		Untrusted []untrustedJSON `json:"untrusted"`
		Problems  []string        `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 1 || len(st) != 1 || st[0].LastBackup.ID != newest {
		t.Fatalf("status --json: exit %d, %v, %+v; want 1 with the newest verified backup", code, err, st)
	}
	checkUntrusted(t, "status", st[0].Untrusted, forgedKey)
	if !slices.ContainsFunc(st[0].Problems, func(p string) bool { return strings.Contains(p, farFutureKey) && strings.Contains(p, "not trusted") }) {
		t.Errorf("status problems %q do not name the planted key", st[0].Problems)
	}

	out, _, code = e.run("verify", "--job", "lite", "--json")
	var checks []struct {
		ID          string          `json:"id"`
		Destination string          `json:"destination"`
		OK          bool            `json:"ok"`
		Untrusted   []untrustedJSON `json:"untrusted"`
	}
	if err := json.Unmarshal([]byte(out), &checks); err != nil || code != 0 || len(checks) != 2 {
		t.Fatalf("verify --json: exit %d, %v; want 0 with two checks", code, err)
	}
	var all []untrustedJSON
	for _, c := range checks {
		if !c.OK || c.ID != newest {
			t.Errorf("verify check %+v, want %s ok", c, newest)
		}
		for _, u := range c.Untrusted {
			if u.Destination != c.Destination {
				t.Errorf("check of %s lists %+v", c.Destination, u)
			}
		}
		all = append(all, c.Untrusted...)
	}
	slices.SortFunc(all, func(a, b untrustedJSON) int { return strings.Compare(a.Destination, b.Destination) })
	checkUntrusted(t, "verify", all, forgedKey)
}

// TestDaemonCatchUpIgnoresPlantedKey: the only "fresh" backup of a weekly
// job is a far-future key planted on both buckets. The daemon does not
// take it for a backup: it catches up at start, and counts the planted
// key in coffer_untrusted_manifests.
func TestDaemonCatchUpIgnoresPlantedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	db := filepath.Join(t.TempDir(), "app.db")
	dbtest.SeedSQLite(t, db, 200)
	jobs := "  lite:\n    source:\n" + sourceYAML(config.Source{Type: "sqlite", Path: db}) + "    schedule: \"0 2 * * 0\"\n"
	cfg := e.daemonConfig("daemon.yaml", jobs, daemonYAML)
	for _, b := range []*bucket{e.primary, e.offsite} {
		b.put(t, farFutureKey, []byte("{}"))
	}
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "the catch-up backup", func() bool {
		return slices.ContainsFunc(e.list(cfg), func(b listed) bool { return !strings.HasPrefix(b.ID, "2999") })
	})
	backups := slices.DeleteFunc(d.logLines("missed run: catching up now"), func(l map[string]any) bool { return l["schedule"] == "drill" })
	if len(backups) != 1 || backups[0]["newest_backup"] != "none" {
		t.Errorf("catch-up logged %v, want one backup catch-up with no newest backup", backups)
	}
	for _, dest := range []string{"primary", "offsite"} {
		if got := d.metric(`coffer_untrusted_manifests{destination="` + dest + `",job="lite"}`); got != 1 {
			t.Errorf("coffer_untrusted_manifests on %s = %v, want 1", dest, got)
		}
	}
}
