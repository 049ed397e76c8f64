package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestWriteCSV checks the CSV has one row per control and evidence line,
// that values with commas, quotes and newlines survive, and that no cell
// a spreadsheet would run as a formula is left as one.
func TestWriteCSV(t *testing.T) {
	r := &Report{Jobs: []JobReport{{
		Job: "app",
		Controls: []Control{
			{ID: ControlWeekly, Title: TitleWeekly, Status: Fail, Summary: "=HYPERLINK(\"http://x\")",
				Evidence: []string{"+1", "-2", "@SUM(A1)", "\t=1+1", "\r=2", "a, \"quoted\"\nmultiline", "plain"}},
			{ID: ControlDrill, Title: TitleDrill, Status: Pass, Summary: "ok"},
		},
	}}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, buf.String())
	}
	sum := "'=HYPERLINK(\"http://x\")"
	want := [][]string{
		{"job", "control", "title", "status", "summary", "evidence"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "'+1"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "'-2"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "'@SUM(A1)"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "'\t=1+1"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "'\r=2"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "a, \"quoted\"\nmultiline"},
		{"app", "weekly-backups", TitleWeekly, "fail", sum, "plain"},
		{"app", "drill", TitleDrill, "pass", "ok", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), buf.String())
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
	}
}

// TestWriteJSON checks the JSON schema scripts rely on: overall and
// per-job "passed", control ids and statuses, full recipient keys next to
// their fingerprints, the timeline and the drill history.
func TestWriteJSON(t *testing.T) {
	in := clean()
	dropEvents(&in.Jobs[0], backupID(sunday(2, 15)), "offsite")
	var buf bytes.Buffer
	if err := WriteJSON(&buf, Evaluate(in)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Generated string `json:"generated"`
		Since     string `json:"since"`
		Passed    *bool  `json:"passed"`
		Jobs      []struct {
			Job      string `json:"job"`
			Passed   *bool  `json:"passed"`
			Controls []struct {
				ID       string   `json:"id"`
				Status   string   `json:"status"`
				Evidence []string `json:"evidence"`
			} `json:"controls"`
			Coverage []struct {
				Destination string `json:"destination"`
				Weeks       []struct {
					Week, Start, Status, Source string
				} `json:"weeks"`
			} `json:"coverage"`
			Recipients []Recipient `json:"recipients"`
			Drills     []struct {
				TotalSeconds float64 `json:"total_seconds"`
				RTOSeconds   float64 `json:"rto_seconds"`
			} `json:"drills"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if got.Passed == nil || *got.Passed || len(got.Jobs) != 1 || got.Jobs[0].Passed == nil || *got.Jobs[0].Passed {
		t.Fatalf("passed = %v, jobs %d: want a failed report with one failed job\n%s", got.Passed, len(got.Jobs), buf.String())
	}
	j := got.Jobs[0]
	var statuses []string
	for _, c := range j.Controls {
		statuses = append(statuses, c.ID+"="+c.Status)
	}
	if want := []string{"weekly-backups=fail", "retention=pass", "encryption=pass", "drill=pass"}; !slices.Equal(statuses, want) {
		t.Errorf("controls %v, want %v", statuses, want)
	}
	if len(j.Recipients) != 1 || j.Recipients[0].Key != keyA || j.Recipients[0].Fingerprint != "age1qyqszqgp...3290gq" {
		t.Errorf("recipients %+v, want %s with its fingerprint", j.Recipients, keyA)
	}
	if len(j.Coverage) != 2 || j.Coverage[1].Weeks[3].Week != "2026-W07" || j.Coverage[1].Weeks[3].Status != WeekMissing {
		t.Errorf("coverage %+v, want offsite's 4th week 2026-W07 missing", j.Coverage)
	}
	if len(j.Drills) != 3 || j.Drills[2].TotalSeconds != 3600 || j.Drills[2].RTOSeconds != 28800 {
		t.Errorf("drills %+v", j.Drills)
	}
	if got.Generated != "2026-04-15T12:00:00Z" || got.Since != "84d" {
		t.Errorf("generated %s, since %s", got.Generated, got.Since)
	}
}

// TestWriteText checks the screen report names each control with its
// status and shows the gap in the timeline.
func TestWriteText(t *testing.T) {
	in := clean()
	dropEvents(&in.Jobs[0], backupID(sunday(2, 15)), "offsite")
	var buf bytes.Buffer
	if err := WriteText(&buf, Evaluate(in)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Result: FAILED (1 of 4 controls failed)",
		"Job app: FAILED",
		"[FAIL] " + TitleWeekly,
		"- offsite: week 2026-W07 (from 2026-02-09) has no complete backup",
		"[PASS] " + TitleRetention,
		"[PASS] " + TitleEncryption,
		"[PASS] " + TitleDrill,
		"2026-W07  2026-02-09  1 audited  MISSING",
		"2026-W15  2026-04-06  1 present  1 present",
		"2026-W16  2026-04-13  pending    pending",
		"age1qyqszqgp...3290gq  " + keyA,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

// TestUnverifiedDrillInEveryFormat: a passed drill whose manifest
// signature was not verified (coffer drill --insecure-skip-signature) is
// shown as failed, with the reason, in the text, JSON, CSV and HTML
// reports, and fails the report.
func TestUnverifiedDrillInEveryFormat(t *testing.T) {
	in := clean()
	last := in.Jobs[0].Drills[len(in.Jobs[0].Drills)-1]
	last.ManifestVerified, last.ManifestSignedBy = new(bool), ""
	r := Evaluate(in)
	if r.Passed() {
		t.Fatal("report passed with an unverified last drill")
	}
	const reason = "manifest signature was not verified"
	var text, js, cs, html bytes.Buffer
	for _, w := range []struct {
		name  string
		write func() error
	}{
		{"text", func() error { return WriteText(&text, r) }},
		{"json", func() error { return WriteJSON(&js, r) }},
		{"csv", func() error { return WriteCSV(&cs, r) }},
		{"html", func() error { return WriteHTML(&html, r) }},
	} {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
	for name, want := range map[string][]string{
		"text": {"[FAIL] " + TitleDrill, reason, "failed, manifest signature not verified"},
		"csv":  {"drill,\"" + TitleDrill + "\",fail", reason},
		"html": {reason},
	} {
		out := map[string]string{"text": text.String(), "csv": cs.String(), "html": html.String()}[name]
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s report lacks %q:\n%s", name, w, out)
			}
		}
	}
	var got struct {
		Jobs []struct {
			Controls []struct {
				ID       string   `json:"id"`
				Status   string   `json:"status"`
				Evidence []string `json:"evidence"`
			} `json:"controls"`
			Drills []struct {
				ID               string `json:"id"`
				Result           string `json:"result"`
				Error            string `json:"error"`
				ManifestVerified *bool  `json:"manifest_verified"`
			} `json:"drills"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || len(got.Jobs) != 1 {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	d := got.Jobs[0].Drills
	if n := len(d); n == 0 || d[n-1].ID != last.ID || d[n-1].Result != "failed" || !strings.Contains(d[n-1].Error, reason) ||
		d[n-1].ManifestVerified == nil || *d[n-1].ManifestVerified {
		t.Errorf("json drill history %+v: want %s failed with the reason and manifest_verified false", d, last.ID)
	}
	for _, c := range got.Jobs[0].Controls {
		if c.ID == ControlDrill && c.Status != "fail" {
			t.Errorf("json drill control %s %v, want fail", c.Status, c.Evidence)
		}
	}
}
