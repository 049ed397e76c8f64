package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
)

func TestWeekRange(t *testing.T) {
	for _, tc := range []struct{ first, last, want string }{
		{"2026-W37", "2026-W37", "2026-W37"},
		{"2026-W37", "2026-W48", "2026-W37..W48"},
		{"2025-W51", "2026-W02", "2025-W51..2026-W02"},
		{"2026-W52", "2026-W53", "2026-W52..W53"},
	} {
		if got := weekRange(tc.first, tc.last); got != tc.want {
			t.Errorf("weekRange(%s, %s) = %q, want %q", tc.first, tc.last, got, tc.want)
		}
	}
}

// TestWeeksReadAsRanges: a job protected since mid-December with nothing
// backed up, reported in January: its missing weeks read as one range
// across the year's end in the summary, the evidence and the text and
// HTML timelines, the weeks before its protection began as one grey
// "not yet protected" range, and the JSON still has every week.
func TestWeeksReadAsRanges(t *testing.T) {
	job := testJob()
	job.ProtectedSince = config.Date{Year: 2025, Month: 12, Day: 15}
	in := Input{
		Now:   time.Date(2026, 1, 14, 12, 0, 0, 0, time.UTC), // Wednesday of 2026-W03
		Since: window,
		Jobs: []JobInput{{Job: job, Destinations: []DestinationInput{
			{Name: "primary", Role: RolePrimary}, {Name: "offsite", Role: RoleOffsite},
		}}},
	}
	r := Evaluate(in)
	j := &r.Jobs[0]
	c := j.Control(ControlWeekly)
	if want := "8 missing weeks: 2025-W51..2026-W02 in primary, 2025-W51..2026-W02 in offsite"; c.Status != Fail || c.Summary != want {
		t.Errorf("weekly control %s: %q, want fail: %q", c.Status, c.Summary, want)
	}
	for _, want := range []string{
		"primary: weeks 2025-W51..2026-W02 (2025-12-15 to 2026-01-11) have no complete backup",
		"job app: protected since 2025-12-15 (jobs.app.protected_since); the 8 weeks before, 2025-W43..W50, were not yet protected and are not judged",
	} {
		if !containsLine(c.Evidence, want) {
			t.Errorf("no evidence line %q in\n  %s", want, strings.Join(c.Evidence, "\n  "))
		}
	}
	if j.ProtectedSince != "2025-12-15" || j.ProtectedSinceSource != "jobs.app.protected_since" {
		t.Errorf("protected since %q (%q)", j.ProtectedSince, j.ProtectedSinceSource)
	}

	var text, html, js bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  Protected since 2025-12-15 (jobs.app.protected_since)\n",
		"    2025-W43..W50       2025-10-20  not yet protected  not yet protected\n",
		"    2025-W51..2026-W02  2025-12-15  MISSING            MISSING\n",
		"    2026-W03            2026-01-12  pending            pending\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<p class="meta protected">Protected since 2025-12-15 (jobs.app.protected_since).</p>`,
		`<tr><td class="mono">2025-W43..W50</td><td class="mono">2025-10-20</td><td class="week not-yet-protected">not-yet-protected</td>`,
		`<tr><td class="mono">2025-W51..2026-W02</td><td class="mono">2025-12-15</td><td class="week missing">missing</td>`,
		`8 missing weeks: 2025-W51..2026-W02 in primary`,
	} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	// 8 weeks in 2 destinations, and the legend.
	if n := strings.Count(html.String(), `fill="`+colourNotYet+`"`); n != 17 {
		t.Errorf("the timeline has %d light grey cells, want 17 (8 weeks in 2 destinations, and the legend)", n)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Jobs []struct {
			ProtectedSince string `json:"protected_since"`
			Source         string `json:"protected_since_source"`
			Coverage       []struct {
				Weeks []Week `json:"weeks"`
			} `json:"coverage"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	weeks := back.Jobs[0].Coverage[0].Weeks
	if back.Jobs[0].ProtectedSince != "2025-12-15" || back.Jobs[0].Source != "jobs.app.protected_since" || len(weeks) != 13 ||
		weeks[0].Week != "2025-W43" || weeks[0].Status != WeekNotYetProtected || weeks[8].Week != "2025-W51" || weeks[8].Status != WeekMissing {
		t.Errorf("JSON: protected since %q (%q), weeks %+v; want every one of 13 weeks, from 2025-W43 not yet protected, 2025-W51 missing",
			back.Jobs[0].ProtectedSince, back.Jobs[0].Source, weeks)
	}
}
