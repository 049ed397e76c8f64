package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// repairJSON is the part of `coffer repair --json` the test reads.
type repairJSON struct {
	Job    string `json:"job"`
	DryRun bool   `json:"dry_run"`
	Repair struct {
		Copied []struct {
			ID     string `json:"id"`
			From   string `json:"from"`
			To     string `json:"to"`
			Action string `json:"action"`
		} `json:"copied"`
		Failed  []json.RawMessage `json:"failed"`
		Planned []struct {
			ID     string `json:"id"`
			To     string `json:"to"`
			Action string `json:"action"`
		} `json:"planned"`
	} `json:"repair"`
}

// TestRepairCommand breaks the offsite copies of two real backups (one
// payload deleted; one backup deleted and a planted key left under its
// id), then: `repair --dry-run --json` plans a heal and a replace and
// changes nothing; `repair --json` carries them out (offsite holds both
// backups again, byte for byte the primary's manifests); a second run has
// nothing to do; the audit trail names what was healed and replaced; an
// unknown job is a usage error.
func TestRepairCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.extraEnv = append(e.extraEnv, "STATE_DIRECTORY="+t.TempDir())
	e.sqliteJob("lite", 100)
	e.backup("lite")
	e.backup("lite")
	var ids []string
	for _, b := range listJSON(t, e) {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	if len(ids) != 2 {
		t.Fatalf("list shows %v, want the 2 backups just taken", ids)
	}
	ctx := context.Background()
	for _, k := range e.offsite.keys(t) {
		switch {
		case strings.HasPrefix(k, "lite/"+ids[0]+"/payload."):
			if err := e.offsite.store.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(k, "lite/"+ids[1]+"/"):
			if err := e.offsite.store.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.offsite.put(t, "lite/"+ids[1]+"/manifest.json", []byte(`{"format_version": 2, "manifest": {}}`))
	broken := e.offsite.keys(t)

	stdout, _, code := e.run("repair", "--dry-run", "--json")
	var plans []repairJSON
	if err := json.Unmarshal([]byte(stdout), &plans); code != 0 || err != nil {
		t.Fatalf("repair --dry-run --json: exit %d, %v\n%s", code, err, stdout)
	}
	var planned []string
	for _, s := range plans[0].Repair.Planned {
		planned = append(planned, s.Action+" "+s.ID+" "+s.To)
	}
	want := []string{"replace " + ids[1] + " offsite", "heal " + ids[0] + " offsite"}
	if len(plans) != 1 || !plans[0].DryRun || !slices.Equal(planned, want) {
		t.Fatalf("repair --dry-run plans %v, want %v", planned, want)
	}
	if got := e.offsite.keys(t); !slices.Equal(got, broken) {
		t.Fatalf("repair --dry-run changed offsite:\n got %v\nwant %v", got, broken)
	}

	stdout, _, code = e.run("repair", "--json")
	var done []repairJSON
	if err := json.Unmarshal([]byte(stdout), &done); code != 0 || err != nil {
		t.Fatalf("repair --json: exit %d, %v\n%s", code, err, stdout)
	}
	var copied []string
	for _, c := range done[0].Repair.Copied {
		copied = append(copied, c.Action+" "+c.ID+" "+c.From+"->"+c.To)
	}
	want = []string{"replace " + ids[1] + " primary->offsite", "heal " + ids[0] + " primary->offsite"}
	if !slices.Equal(copied, want) || len(done[0].Repair.Failed) != 0 {
		t.Fatalf("repair did %v (failed %v), want %v", copied, done[0].Repair.Failed, want)
	}
	for _, id := range ids {
		key := "lite/" + id + "/manifest.json"
		if string(e.offsite.get(t, key)) != string(e.primary.get(t, key)) {
			t.Errorf("offsite's %s is not the primary's, byte for byte", key)
		}
	}
	for _, b := range listJSON(t, e) {
		if len(b.Destinations) != 2 {
			t.Errorf("after repair, list shows %s on %v, want both destinations", b.ID, b.Destinations)
		}
	}

	stdout, _, code = e.run("repair")
	if code != 0 || !strings.Contains(stdout, "every destination holds every backup whole") {
		t.Fatalf("second repair: exit %d, want 0 and nothing to do:\n%s", code, stdout)
	}

	stdout, _, code = e.run("audit", "--format", "csv", "--since", "1d")
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if code != 0 || err != nil || len(rows) == 0 {
		t.Fatalf("audit --format csv: exit %d, %v", code, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var details []string
	for _, r := range rows[1:] {
		if r[col["action"]] == "repair" && r[col["outcome"]] == "ok" && r[col["destination"]] == "offsite" {
			details = append(details, r[col["backup_id"]]+": "+r[col["detail"]])
		}
	}
	if len(details) != 2 || !strings.Contains(strings.Join(details, "\n"), ids[0]+": healed (") || !strings.Contains(strings.Join(details, "\n"), ids[1]+": replaced an untrusted manifest") {
		t.Errorf("audit repair rows %q, want %s healed and %s replaced", details, ids[0], ids[1])
	}

	// An offsite that cannot be reached: nothing repaired there, exit 1.
	writeFile(t, e.config, strings.Replace(readFile(t, e.config), e.offsite.server.Endpoint, "http://"+freeAddr(t), 1))
	if stdout, stderr, code := e.run("repair"); code != 1 || !strings.Contains(stdout, "offsite: NOT REPAIRED") {
		t.Errorf("repair with offsite down: exit %d, want 1 naming offsite:\n%s\n%s", code, stdout, stderr)
	}

	if _, stderr, code := e.run("repair", "--job", "nosuch"); code != 2 {
		t.Errorf("repair --job nosuch: exit %d (%s), want 2", code, stderr)
	}
}
