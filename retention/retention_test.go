package retention

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London on machines without a zoneinfo database

	"github.com/coffer-backup/coffer/internal/human"
)

const day = 24 * time.Hour

// now is a Sunday at 02:00 UTC, when the default schedule runs.
var now = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// defaults is the policy a job gets when its config says nothing.
var defaults = Policy{KeepWithin: 28 * day, MinKeep: 2}

// at returns a backup taken at t, held on copies destinations, with an id
// in Coffer's format.
func at(t time.Time, copies int) Backup {
	return Backup{ID: t.UTC().Format("20060102T150405.000Z") + "-7f3a", Time: t, Copies: copies}
}

// ago returns a backup taken age before now, held on two destinations.
func ago(age time.Duration) Backup { return at(now.Add(-age), 2) }

// utc parses an RFC 3339 time.
func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// want is the expected rule for one backup, by position in the input.
type want []Rule

func TestPlan(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	weeks := func(n int) []Backup { // the default schedule: one backup a week
		var bs []Backup
		for i := range n {
			bs = append(bs, ago(time.Duration(i)*7*day))
		}
		return bs
	}
	// Around the start of British Summer Time (2026-03-29 01:00 UTC),
	// which is also the end of ISO week 13 and, two days later, of March.
	dst := []Backup{
		at(utc("2026-04-19T10:00:00Z"), 2), // Sun, W16
		at(utc("2026-04-05T10:00:00Z"), 2), // Sun, W14
		at(utc("2026-03-29T23:30:00Z"), 2), // Sun W13 in UTC; Mon 00:30 BST, W14 in London
		at(utc("2026-03-29T00:30:00Z"), 2), // Sun 00:30 GMT, W13 everywhere
		at(utc("2026-03-22T10:00:00Z"), 2), // Sun, W12
	}
	monthEnd := []Backup{
		at(utc("2026-04-19T10:00:00Z"), 2), // April
		at(utc("2026-03-31T23:30:00Z"), 2), // March in UTC; 1 April 00:30 BST in London
		at(utc("2026-03-31T22:30:00Z"), 2), // 23:30 BST, March everywhere
		at(utc("2026-02-28T10:00:00Z"), 2), // February
	}
	dstNow := utc("2026-04-20T12:00:00Z")

	tests := []struct {
		name    string
		policy  Policy
		backups []Backup
		now     time.Time
		want    want
	}{{
		name:    "weekly backups for 10 weeks keep four weeks",
		policy:  defaults,
		backups: weeks(10),
		want: want{RuleNewest, RuleWithin, RuleWithin, RuleWithin, RuleWithin,
			RuleExpired, RuleExpired, RuleExpired, RuleExpired, RuleExpired},
	}, {
		name:    "weekly backups for 10 weeks with keep_weekly 7 and keep_monthly 3",
		policy:  Policy{KeepWithin: 28 * day, MinKeep: 2, KeepWeekly: 7, KeepMonthly: 3},
		backups: weeks(10), // 22 Nov back to 20 Sep: months Nov, Oct, Sep
		want: want{RuleNewest, RuleWithin, RuleWithin, RuleWithin, RuleWithin,
			RuleWeekly, RuleWeekly, RuleExpired, RuleMonthly, RuleExpired},
	}, {
		name:   "gaps of several weeks: keep_weekly counts weeks that have a backup",
		policy: Policy{KeepWithin: 28 * day, MinKeep: 1, KeepWeekly: 3},
		backups: []Backup{
			at(utc("2026-11-20T02:00:00Z"), 2), // W47
			at(utc("2026-10-11T02:00:00Z"), 2), // W41, newest of the week
			at(utc("2026-10-10T02:00:00Z"), 2), // W41
			at(utc("2026-09-06T02:00:00Z"), 2), // W36, the third week with a backup
			at(utc("2026-06-07T02:00:00Z"), 2), // W23
		},
		want: want{RuleNewest, RuleWeekly, RuleExpired, RuleWeekly, RuleExpired},
	}, {
		name:    "recent backups all failed: min_keep holds the old complete ones",
		policy:  defaults,
		backups: []Backup{ago(60 * day), ago(67 * day), ago(74 * day)},
		want:    want{RuleNewest, RuleMinKeep, RuleExpired},
	}, {
		name:    "recent backups all failed: nothing deleted below min_keep",
		policy:  Policy{KeepWithin: 28 * day, MinKeep: 5},
		backups: []Backup{ago(60 * day), ago(67 * day), ago(74 * day)},
		want:    want{RuleNewest, RuleMinKeep, RuleMinKeep},
	}, {
		name:    "a single old backup is kept as the newest",
		policy:  Policy{MinKeep: 1},
		backups: []Backup{ago(400 * day)},
		want:    want{RuleNewest},
	}, {
		name:    "exactly 28 days old is kept, 28 days and 1s is not",
		policy:  defaults,
		backups: []Backup{ago(0), ago(28 * day), ago(28*day + time.Second)},
		want:    want{RuleNewest, RuleWithin, RuleExpired},
	}, {
		name:    "min_keep boundary: the min_keep-th newest is kept, the next is not",
		policy:  Policy{KeepWithin: 28 * day, MinKeep: 3},
		backups: []Backup{ago(40 * day), ago(50 * day), ago(60 * day), ago(70 * day)},
		want:    want{RuleNewest, RuleMinKeep, RuleMinKeep, RuleExpired},
	}, {
		name:    "min_keep counts backups kept for other reasons",
		policy:  Policy{KeepWithin: 28 * day, MinKeep: 3},
		backups: []Backup{ago(1 * day), ago(2 * day), ago(40 * day), ago(50 * day)},
		want:    want{RuleNewest, RuleWithin, RuleMinKeep, RuleExpired},
	}, {
		name:   "the only copy anywhere is kept",
		policy: defaults,
		backups: []Backup{ago(0), ago(7 * day),
			at(now.Add(-40*day), 1), at(now.Add(-50*day), 2), at(now.Add(-60*day), 0)},
		want: want{RuleNewest, RuleWithin, RuleOnlyCopy, RuleExpired, RuleOnlyCopy},
	}, {
		name:   "precedence when several keep rules match",
		policy: Policy{KeepWithin: 10 * day, MinKeep: 3, KeepWeekly: 5, KeepMonthly: 12},
		backups: []Backup{
			at(now.Add(-1*day), 1),  // newest, within, min_keep, only copy, weekly, monthly
			at(now.Add(-9*day), 1),  // within, min_keep, only copy, weekly
			at(now.Add(-20*day), 1), // min_keep, only copy, weekly
			at(now.Add(-30*day), 1), // only copy, weekly, monthly (October)
			at(now.Add(-37*day), 2), // weekly
			at(now.Add(-65*day), 2), // monthly (September)
			at(now.Add(-66*day), 2), // September, but not its newest
		},
		want: want{RuleNewest, RuleWithin, RuleMinKeep, RuleOnlyCopy, RuleWeekly, RuleMonthly, RuleExpired},
	}, {
		name:    "keep_weekly in Europe/London across the start of summer time",
		policy:  Policy{KeepWithin: time.Hour, MinKeep: 1, KeepWeekly: 3, Location: london},
		backups: dst,
		now:     dstNow,
		want:    want{RuleNewest, RuleWeekly, RuleExpired, RuleWeekly, RuleExpired},
	}, {
		name:    "keep_weekly in UTC on the same history puts Sunday 23:30 in week 13",
		policy:  Policy{KeepWithin: time.Hour, MinKeep: 1, KeepWeekly: 3},
		backups: dst,
		now:     dstNow,
		want:    want{RuleNewest, RuleWeekly, RuleWeekly, RuleExpired, RuleExpired},
	}, {
		name:    "keep_monthly in Europe/London: 31 March 23:30 UTC is already April",
		policy:  Policy{KeepWithin: time.Hour, MinKeep: 1, KeepMonthly: 2, Location: london},
		backups: monthEnd,
		now:     dstNow,
		want:    want{RuleNewest, RuleExpired, RuleMonthly, RuleExpired},
	}, {
		name:    "keep_monthly in UTC on the same history",
		policy:  Policy{KeepWithin: time.Hour, MinKeep: 1, KeepMonthly: 2},
		backups: monthEnd,
		now:     dstNow,
		want:    want{RuleNewest, RuleMonthly, RuleExpired, RuleExpired},
	}, {
		name:    "newest dated within the clock tolerance is fine",
		policy:  defaults,
		backups: []Backup{ago(-ClockTolerance), ago(40 * day), ago(50 * day)},
		want:    want{RuleNewest, RuleMinKeep, RuleExpired},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) != len(tt.backups) {
				t.Fatalf("bad test: %d backups, %d wanted rules", len(tt.backups), len(tt.want))
			}
			when := tt.now
			if when.IsZero() {
				when = now
			}
			// Feed the history oldest first to show that order does not matter.
			in := make([]Backup, len(tt.backups))
			for i, b := range tt.backups {
				in[len(in)-1-i] = b
			}
			got, err := Plan(tt.policy, in, when)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.backups) {
				t.Fatalf("got %d decisions for %d backups", len(got), len(tt.backups))
			}
			for i, d := range got {
				b := tt.backups[i]
				if d.ID != b.ID || d.Rule != tt.want[i] || d.Keep != (tt.want[i] != RuleExpired) || d.Reason == "" {
					t.Errorf("#%d %s (%s old): got keep=%v %s %q, want %s %s",
						i, b.ID, when.Sub(b.Time), d.Keep, d.Rule, d.Reason, b.ID, tt.want[i])
				}
			}
		})
	}
}

func TestPlanReasons(t *testing.T) {
	p := Policy{KeepWithin: 28 * day, MinKeep: 3, KeepWeekly: 1}
	got, err := Plan(p, []Backup{ago(0), ago(28 * day), ago(40 * day), ago(50 * day)}, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"newest complete backup",
		"28d old, within keep_within 28d",
		"one of the 3 newest complete backups (min_keep 3)",
		"50d old, older than 28d and not needed by min_keep 3, keep_weekly 1",
	} {
		if got[i].Reason != want {
			t.Errorf("#%d: reason %q, want %q", i, got[i].Reason, want)
		}
	}
}

func TestPlanFutureClockRefusesEverything(t *testing.T) {
	for _, ahead := range []time.Duration{ClockTolerance + time.Second, 3 * time.Hour, 400 * day} {
		backups := []Backup{ago(-ahead), ago(90 * day), ago(100 * day), at(now.Add(-200*day), 1)}
		got, err := Plan(defaults, backups, now)
		if !errors.Is(err, ErrFutureBackup) {
			t.Fatalf("%s ahead: err = %v, want ErrFutureBackup", ahead, err)
		}
		if got != nil {
			t.Errorf("%s ahead: got %d decisions, want none", ahead, len(got))
		}
		if msg := err.Error(); !strings.Contains(msg, backups[0].ID) || !strings.Contains(msg, human.Duration(ahead)) {
			t.Errorf("%s ahead: error %q does not name the backup and how far ahead it is", ahead, msg)
		}
	}
}

func TestPlanDuplicatesAndEmpty(t *testing.T) {
	got, err := Plan(defaults, nil, now)
	if err != nil || got != nil {
		t.Fatalf("no backups: got %v, %v; want nothing and no error", got, err)
	}

	old := ago(60 * day)
	onlyHere := old
	onlyHere.Copies = 1 // the same backup, seen when one destination had lost it
	b := []Backup{ago(50 * day), old, ago(0), ago(50 * day), onlyHere, ago(0), ago(70 * day)}
	got, err = Plan(defaults, b, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID+":"+string(d.Rule))
	}
	want := []string{
		ago(0).ID + ":newest",
		ago(50*day).ID + ":min_keep",
		old.ID + ":only_copy", // merged with the fewest copies seen
		ago(70*day).ID + ":expired",
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", ids, want)
	}
}

func TestPlanDuplicateWithDifferentTimesKeepsTheLater(t *testing.T) {
	old := ago(60 * day)
	recent := old
	recent.Time = now.Add(-time.Hour) // same id, a different time: trust the one that keeps it
	got, err := Plan(defaults, []Backup{ago(0), ago(1 * day), old, recent}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].ID != old.ID || got[1].Rule != RuleWithin || !got[1].Time.Equal(recent.Time) {
		t.Errorf("got %+v, want %s kept by keep_within at %s", got, old.ID, recent.Time)
	}
}

func TestPlanRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		backups []Backup
		is      error
		field   string
	}{
		{"min_keep 0", Policy{KeepWithin: 28 * day}, nil, ErrInvalidPolicy, "min_keep"},
		{"min_keep negative", Policy{KeepWithin: 28 * day, MinKeep: -2}, nil, ErrInvalidPolicy, "min_keep"},
		{"keep_within negative", Policy{KeepWithin: -time.Second, MinKeep: 2}, nil, ErrInvalidPolicy, "keep_within"},
		{"keep_weekly negative", Policy{KeepWithin: 28 * day, MinKeep: 2, KeepWeekly: -1}, nil, ErrInvalidPolicy, "keep_weekly"},
		{"keep_monthly negative", Policy{KeepWithin: 28 * day, MinKeep: 2, KeepMonthly: -1}, nil, ErrInvalidPolicy, "keep_monthly"},
		{"backup without id", defaults, []Backup{ago(0), {Time: now, Copies: 2}}, ErrInvalidBackup, "no id"},
		{"backup without time", defaults, []Backup{ago(0), {ID: "x", Copies: 2}}, ErrInvalidBackup, "backup x has no time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A valid history, so only the bad input can cause the error.
			backups := append([]Backup{ago(1 * day), ago(40 * day)}, tt.backups...)
			got, err := Plan(tt.policy, backups, now)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want %v naming %q", err, tt.is, tt.field)
			}
			if got != nil {
				t.Errorf("got %d decisions, want none", len(got))
			}
		})
	}
}

// TestCheckClock: the host's clock and a destination's own clock may be up
// to ClockTolerance apart either way; further apart, or with the storage's
// time unknown, CheckClock refuses, naming both times and the difference.
func TestCheckClock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		host    time.Time
		storage time.Time
		want    string // "" means accepted
	}{
		{"equal", now, now, ""},
		{"host 5m ahead: the tolerance, accepted", now.Add(ClockTolerance), now, ""},
		{"host 5m behind: accepted", now.Add(-ClockTolerance), now, ""},
		{"host 5m1s ahead", now.Add(ClockTolerance + time.Second), now, "host clock 2026-11-22T02:05:01Z is 5m1s ahead of the storage's clock 2026-11-22T02:00:00Z (tolerance 5m)"},
		{"host 6m behind", now.Add(-6 * time.Minute), now, "host clock 2026-11-22T01:54:00Z is 6m behind the storage's clock 2026-11-22T02:00:00Z"},
		{"host jumped 30 days forward", now.Add(30*day - time.Second), now, "is 30d ahead of"},
		{"storage time unknown", now, time.Time{}, "the storage's time is unknown"},
	} {
		err := CheckClock(tc.host, tc.storage)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrClockSkew) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrClockSkew saying %q", tc.name, err, tc.want)
		}
	}
}
