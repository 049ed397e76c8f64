package e2e

import (
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// TestPrunePurgeAudit takes two real backups of a SQLite job, then: a dry
// run of prune keeps both (inside keep_within) and changes nothing; purge
// without --confirm exits 2 and changes nothing; with --confirm both
// buckets hold nothing of the job; and the audit export shows one purge
// row per destination, as CSV and as JSON.
func TestPrunePurgeAudit(t *testing.T) {
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
	if len(ids) != 2 {
		t.Fatalf("list shows backups %v, want the 2 just taken", ids)
	}
	slices.Sort(ids)
	before := map[string][]string{"primary": e.primary.keys(t), "offsite": e.offsite.keys(t)}
	unchanged := func(after string) {
		t.Helper()
		for name, b := range map[string]*bucket{"primary": e.primary, "offsite": e.offsite} {
			if got := b.keys(t); !slices.Equal(got, before[name]) {
				t.Fatalf("%s changed by %s:\n got %v\nwant %v", name, after, got, before[name])
			}
		}
	}

	// prune --dry-run --json: both kept on both destinations.
	stdout, _, code := e.run("prune", "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("prune --dry-run: exit %d, want 0", code)
	}
	var plans []struct {
		Job    string `json:"job"`
		DryRun bool   `json:"dry_run"`
		Items  []struct {
			Destination string `json:"destination"`
			ID          string `json:"id"`
			Keep        bool   `json:"keep"`
			Rule        string `json:"rule"`
			Outcome     string `json:"outcome"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &plans); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, stdout)
	}
	if len(plans) != 1 || plans[0].Job != "lite" || !plans[0].DryRun {
		t.Fatalf("prune --dry-run --json = %+v, want one dry-run result for job lite", plans)
	}
	wantRule := map[string]string{ids[1]: "newest", ids[0]: "keep_within"}
	seen := map[string]int{}
	for _, it := range plans[0].Items {
		seen[it.Destination+" "+it.ID]++
		if !it.Keep || it.Outcome != "kept" || it.Rule != wantRule[it.ID] {
			t.Errorf("%s on %s: keep %v, outcome %q, rule %q; want kept by %q", it.ID, it.Destination, it.Keep, it.Outcome, it.Rule, wantRule[it.ID])
		}
	}
	for _, d := range []string{"primary", "offsite"} {
		for _, id := range ids {
			if seen[d+" "+id] != 1 {
				t.Errorf("backup %s on %s decided %d times in the plan, want once", id, d, seen[d+" "+id])
			}
		}
	}
	unchanged("prune --dry-run")

	// purge without --confirm: a usage error that deletes nothing.
	stdout, stderr, code := e.run("purge", "--job", "lite")
	if code != 2 || !strings.Contains(stderr, "--confirm") {
		t.Fatalf("purge without --confirm: exit %d, stderr %q; want exit 2 asking for --confirm", code, stderr)
	}
	for _, d := range []string{"primary", "offsite"} {
		if !strings.Contains(stdout, d+": 2 backups") {
			t.Errorf("purge without --confirm does not say that %s's 2 backups would go:\n%s", d, stdout)
		}
	}
	unchanged("purge without --confirm")

	// purge --confirm: nothing of the job left anywhere.
	if _, _, code := e.run("purge", "--job", "lite", "--confirm"); code != 0 {
		t.Fatalf("purge --confirm: exit %d, want 0", code)
	}
	for name, b := range map[string]*bucket{"primary": e.primary, "offsite": e.offsite} {
		for _, k := range b.keys(t) {
			if !strings.HasPrefix(k, "_coffer/audit/") {
				t.Errorf("%s still holds %s after purge (only the audit trail may remain)", name, k)
			}
		}
	}

	// The audit trail: one purge row per destination, no prune rows (the
	// prune was a dry run).
	stdout, _, code = e.run("audit", "--format", "csv", "--since", "1d")
	if code != 0 {
		t.Fatalf("audit --format csv: exit %d", code)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("audit CSV: %v\n%s", err, stdout)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"action", "job", "backup_id", "destination", "outcome", "detail"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("audit CSV header %v lacks %q", rows[0], h)
		}
	}
	purged := map[string]int{}    // summary rows per destination
	purgedIDs := map[string]int{} // per-backup rows per destination
	for _, r := range rows[1:] {
		switch {
		case r[col["action"]] == "purge" && r[col["backup_id"]] != "":
			if r[col["job"]] != "lite" || r[col["outcome"]] != "ok" {
				t.Errorf("purge row %v, want job lite, outcome ok", r)
			}
			purgedIDs[r[col["destination"]]]++
		case r[col["action"]] == "purge":
			if r[col["job"]] != "lite" || r[col["outcome"]] != "ok" || !strings.Contains(r[col["detail"]], "2 backups") {
				t.Errorf("purge row %v, want job lite, outcome ok, 2 backups removed", r)
			}
			purged[r[col["destination"]]]++
		case r[col["action"]] == "prune":
			t.Errorf("audit has a prune row %v after a dry run only", r)
		}
	}
	if purged["primary"] != 1 || purged["offsite"] != 1 || len(purged) != 2 {
		t.Errorf("audit CSV purge summary rows per destination %v, want one each for primary and offsite", purged)
	}
	if purgedIDs["primary"] != 2 || purgedIDs["offsite"] != 2 || len(purgedIDs) != 2 {
		t.Errorf("audit CSV per-backup purge rows %v, want two (one per backup) on each destination", purgedIDs)
	}

	stdout, _, code = e.run("audit", "--format", "json", "--since", "1d")
	var events []struct {
		Action      string `json:"action"`
		Job         string `json:"job"`
		BackupID    string `json:"backup_id"`
		Destination string `json:"destination"`
		Outcome     string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(stdout), &events); code != 0 || err != nil {
		t.Fatalf("audit --format json: exit %d, %v\n%s", code, err, stdout)
	}
	var jsonPurged []string
	for _, ev := range events {
		if ev.Action == "purge" && ev.Job == "lite" && ev.Outcome == "ok" && ev.BackupID == "" {
			jsonPurged = append(jsonPurged, ev.Destination)
		}
	}
	slices.Sort(jsonPurged)
	if !slices.Equal(jsonPurged, []string{"offsite", "primary"}) || len(events) != len(rows)-1 {
		t.Errorf("audit JSON: purges at %v of %d events; want offsite and primary, as many events as CSV rows (%d)", jsonPurged, len(events), len(rows)-1)
	}
}
