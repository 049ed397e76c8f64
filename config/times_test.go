package config

import (
	"strings"
	"testing"
	"time"
)

// TestValidatedTimes: Parse keeps each job's time zone and schedules
// parsed, so nothing after validation parses them again.
func TestValidatedTimes(t *testing.T) {
	c, err := Parse("coffer.yaml", []byte(`recipients: [`+testRecipient+`]
destinations:
  d: {type: local, path: /b}
jobs:
  app:
    source: {type: postgres, database: app}
    schedule: "0 2 * * 1-5"
    timezone: Europe/London
    drill: {schedule: "@monthly"}
`))
	if err != nil {
		t.Fatal(err)
	}
	j := c.Jobs["app"]
	if got := j.Location().String(); got != "Europe/London" {
		t.Errorf("Location = %s", got)
	}
	// Sunday 2026-07-05 12:00 UTC: the next weekday 02:00 in London
	// (British Summer Time) is Monday 01:00 UTC.
	now := time.Date(2026, 7, 5, 12, 0, 0, 0, time.UTC)
	if got, want := j.BackupSchedule().Next(now.In(j.Location())), time.Date(2026, 7, 6, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next backup %s, want %s", got.UTC(), want)
	}
	if got, want := j.DrillSchedule().Next(now.In(j.Location())), time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next drill %s, want %s", got.UTC(), want)
	}
}

// TestProtectedSince: jobs.NAME.protected_since is a day, quoted or
// not, that starts at midnight in the job's time zone; left out, it is
// unset.
func TestProtectedSince(t *testing.T) {
	c, err := Parse("coffer.yaml", []byte(`recipients: [`+testRecipient+`]
destinations:
  d: {type: local, path: /b}
jobs:
  app:
    source: {type: postgres, database: app}
    timezone: Europe/Berlin
    protected_since: 2026-11-30
  quoted:
    source: {type: postgres, database: app}
    protected_since: "2026-03-29"
  unset:
    source: {type: postgres, database: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	app := c.Jobs["app"]
	if got, want := app.ProtectedSince.In(app.Location()), time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("app: protected since %s, want %s (midnight in Berlin)", got.UTC(), want)
	}
	if got := c.Jobs["quoted"].ProtectedSince.String(); got != "2026-03-29" {
		t.Errorf("quoted: protected_since %q", got)
	}
	if d := c.Jobs["unset"].ProtectedSince; !d.IsZero() || !d.In(time.UTC).IsZero() {
		t.Errorf("unset: protected_since %v, want unset", d)
	}
}

// TestResolve: a job built in code gets its times from Resolve, with the
// defaults for what it leaves empty and validation's messages for what
// is wrong.
func TestResolve(t *testing.T) {
	j := &Job{Name: "app"}
	if err := j.Resolve(); err != nil {
		t.Fatal(err)
	}
	if j.Timezone != DefaultTimezone || j.Schedule != DefaultSchedule || j.Drill.Schedule != DefaultDrillSchedule {
		t.Errorf("defaults: timezone %q, schedule %q, drill.schedule %q", j.Timezone, j.Schedule, j.Drill.Schedule)
	}
	if j.Location() != time.UTC || j.BackupSchedule() == nil || j.DrillSchedule() == nil {
		t.Errorf("Location %v, BackupSchedule %v, DrillSchedule %v", j.Location(), j.BackupSchedule(), j.DrillSchedule())
	}

	bad := &Job{Name: "app", Timezone: "Mars/Olympus_Mons", Schedule: "@every 10s", Drill: Drill{Schedule: "TZ=UTC @daily"}}
	err := bad.Resolve()
	for _, want := range []string{
		"jobs.app.schedule: runs every 10s; the shortest interval is 1m",
		`jobs.app.timezone: unknown time zone "Mars/Olympus_Mons" (want an IANA name such as UTC or Europe/Berlin)`,
		"jobs.app.drill.schedule: set the time zone with the job's timezone key, not in the schedule",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve: %v; want %q", err, want)
		}
	}
	if bad.times != nil {
		t.Error("a job that does not resolve has times")
	}
}

// TestTimesNeedValidation: a job that was not validated, or was changed
// after, panics instead of running on the wrong schedule.
func TestTimesNeedValidation(t *testing.T) {
	mustPanic := func(what, want string, f func()) {
		t.Helper()
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), want) {
				t.Errorf("%s: panic %v, want one saying %q", what, r, want)
			}
		}()
		f()
	}
	mustPanic("not validated", "used before validation", func() { (&Job{Name: "app"}).Location() })
	j := &Job{Name: "app"}
	if err := j.Resolve(); err != nil {
		t.Fatal(err)
	}
	j.Timezone = "Europe/Berlin"
	mustPanic("changed", "changed after validation", func() { j.BackupSchedule() })
	if err := j.Resolve(); err != nil {
		t.Fatal(err)
	}
	if got := j.Location().String(); got != "Europe/Berlin" {
		t.Errorf("Location after Resolve again = %s", got)
	}
}

func TestSchedulePeriod(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"0 2 * * 0":     7 * 24 * time.Hour,
		"@weekly":       7 * 24 * time.Hour,
		"@daily":        24 * time.Hour,
		"0 2 * * 1-5":   3 * 24 * time.Hour, // Friday to Monday
		"*/10 * * * *":  10 * time.Minute,
		"*/5 * * * * *": 5 * time.Second,
		"@every 6h":     6 * time.Hour,
	} {
		job := &Job{Name: "a", Schedule: spec}
		if err := job.Resolve(); err != nil {
			t.Fatal(err)
		}
		if got := SchedulePeriod(job.BackupSchedule(), now); got != want {
			t.Errorf("SchedulePeriod(%q) = %s, want %s", spec, got, want)
		}
	}
}
