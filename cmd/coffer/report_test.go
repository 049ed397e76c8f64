package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportAfterDemo runs the demo (a job created and backed up now)
// and then the report over the default 12 weeks: it passes, the weeks
// before the first backup not yet protected, and says when protection
// began. With jobs.music-hub.protected_since three weeks back, the empty
// weeks since count as missing, as one range, and the report fails with
// one error line on stderr, whether it goes to stdout or to a file.
func TestReportAfterDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if r := coffer(t, "demo", "--dir", dir); r.code != exitOK {
		t.Fatalf("demo: exit %d (%v)\n%s", r.code, r.err, r.out)
	}
	cfg := filepath.Join(dir, "coffer.yaml")
	today := time.Now().UTC()

	r := coffer(t, "report", "--config", cfg)
	if r.code != exitOK || r.errOut != "" {
		t.Fatalf("report after the demo: exit %d, stderr %q, want 0 and nothing\n%s", r.code, r.errOut, r.out)
	}
	for _, want := range []string{
		"Result: PASSED",
		"Protected since " + today.Format(time.DateOnly) + " (first backup)",
		"not yet protected",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("report lacks %q:\n%s", want, r.out)
		}
	}

	// Protected since the Monday three weeks before this one: the three
	// weeks from it have no backup.
	monday := today.AddDate(0, 0, -(int(today.Weekday())+6)%7-21)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "    schedule:", "    protected_since: "+monday.Format(time.DateOnly)+"\n    schedule:", 1)
	if edited == string(data) {
		t.Fatalf("no job schedule to add protected_since before in\n%s", data)
	}
	if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	y1, w1 := monday.ISOWeek()
	y3, w3 := monday.AddDate(0, 0, 14).ISOWeek()
	span := fmt.Sprintf("%d-W%02d..W%02d", y1, w1, w3)
	if y3 != y1 {
		span = fmt.Sprintf("%d-W%02d..%d-W%02d", y1, w1, y3, w3)
	}

	r = coffer(t, "report", "--config", cfg)
	wantErr := "coffer: report: 1 control(s) failed\n"
	if r.code != exitFailed || r.errOut != wantErr {
		t.Errorf("failing report: exit %d, stderr %q; want 1 and the one line %q", r.code, r.errOut, wantErr)
	}
	if want := "6 missing weeks: " + span + " in primary, " + span + " in offsite"; !strings.Contains(r.out, want) {
		t.Errorf("report lacks %q:\n%s", want, r.out)
	}
	if want := "(jobs.music-hub.protected_since)"; !strings.Contains(r.out, want) {
		t.Errorf("report lacks %q:\n%s", want, r.out)
	}

	html := filepath.Join(t.TempDir(), "report.html")
	r = coffer(t, "report", "--config", cfg, "--format", "html", "-o", html)
	wantErr = "coffer: report: 1 control(s) failed (the html report is in " + html + ")\n"
	if r.code != exitFailed || r.errOut != wantErr {
		t.Errorf("failing report to a file: exit %d, stderr %q; want 1 and the one line %q", r.code, r.errOut, wantErr)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), span) {
		t.Errorf("HTML report (%v) lacks %s", err, span)
	}
}
