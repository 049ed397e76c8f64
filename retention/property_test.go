package retention

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestPlanInvariants checks the product's promises on a few thousand random
// histories: unsorted, with duplicates, gaps, single copies, and sometimes a
// clock that is behind.
func TestPlanInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	var zones []*time.Location
	for _, name := range []string{"UTC", "Europe/London", "America/New_York", "Pacific/Auckland"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, loc)
	}
	zones = append(zones, nil)
	for c := range 3000 {
		p := Policy{
			KeepWithin:  time.Duration(rng.Int64N(int64(60 * day))),
			MinKeep:     1 + rng.IntN(5),
			KeepWeekly:  rng.IntN(6),
			KeepMonthly: rng.IntN(6),
			Location:    zones[rng.IntN(len(zones))],
		}
		var in []Backup
		for range rng.IntN(30) {
			if len(in) > 0 && rng.IntN(8) == 0 { // a duplicate, perhaps seen with fewer copies
				d := in[rng.IntN(len(in))]
				d.Copies = 1 + rng.IntN(3)
				if rng.IntN(4) == 0 {
					if shifted := d.Time.Add(time.Duration(rng.Int64N(int64(60*day))) - 30*day); shifted.Before(now) {
						d.Time = shifted
					}
				}
				in = append(in, d)
				continue
			}
			age := time.Duration(rng.Int64N(int64(400*day))) - ClockTolerance
			in = append(in, at(now.Add(-age).Truncate(time.Millisecond), 1+rng.IntN(3)))
		}
		future := len(in) > 0 && rng.IntN(20) == 0
		if future {
			in = append(in, at(now.Add(ClockTolerance+time.Duration(1+rng.Int64N(int64(30*day)))), 2))
		}
		input := slices.Clone(in)
		got, err := Plan(p, in, now)
		name := fmt.Sprintf("case %d (policy %+v, %d backups)", c, p, len(in))
		if !slices.Equal(in, input) {
			t.Fatalf("%s: Plan changed its input", name)
		}
		if future {
			if !errors.Is(err, ErrFutureBackup) || got != nil {
				t.Fatalf("%s: clock behind: got %d decisions, err %v; want none and ErrFutureBackup", name, len(got), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkInvariants(t, name, p, in, got)
	}
}

func checkInvariants(t *testing.T, name string, p Policy, in []Backup, got []Decision) {
	t.Helper()
	// Each distinct id gets exactly one decision.
	count := map[string]int{}
	for _, d := range got {
		count[d.ID]++
	}
	for _, b := range in {
		if count[b.ID] != 1 {
			t.Fatalf("%s: backup %s has %d decisions, want 1", name, b.ID, count[b.ID])
		}
	}
	if len(count) != len(got) {
		t.Fatalf("%s: %d decisions for %d distinct backups", name, len(got), len(count))
	}
	if len(got) == 0 {
		return
	}
	keep := map[string]bool{}
	kept := 0
	for i, d := range got {
		if i > 0 && d.Time.After(got[i-1].Time) {
			t.Fatalf("%s: decisions not sorted newest first at #%d", name, i)
		}
		if d.Keep != (d.Rule != RuleExpired) || d.Reason == "" {
			t.Fatalf("%s: inconsistent decision %+v", name, d)
		}
		keep[d.ID] = d.Keep
		if d.Keep {
			kept++
		}
	}
	newest := slices.MaxFunc(in, func(a, b Backup) int { return a.Time.Compare(b.Time) })
	if !keep[newest.ID] || got[0].Time != newest.Time {
		t.Fatalf("%s: newest backup %s not kept first: %+v", name, newest.ID, got[0])
	}
	if want := min(p.MinKeep, len(got)); kept < want {
		t.Fatalf("%s: kept %d, want at least %d", name, kept, want)
	}
	for _, b := range in {
		if now.Sub(b.Time) <= p.KeepWithin && !keep[b.ID] {
			t.Fatalf("%s: backup %s is %s old, within keep_within, and deleted", name, b.ID, now.Sub(b.Time))
		}
		if b.Copies <= 1 && !keep[b.ID] {
			t.Fatalf("%s: backup %s is the only copy and deleted", name, b.ID)
		}
	}
	// And nothing is kept without a reason: recompute, another way, which
	// backups some keep rule covers; exactly those must be kept.
	merged := map[string]Backup{}
	for _, b := range in {
		if m, ok := merged[b.ID]; ok {
			b.Time = later(b.Time, m.Time)
			b.Copies = min(b.Copies, m.Copies)
		}
		merged[b.ID] = b
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	covered := map[string]bool{}
	periods(covered, merged, p.KeepWeekly, func(t time.Time) string {
		y, w := t.In(loc).ISOWeek()
		return fmt.Sprint(y, w)
	})
	periods(covered, merged, p.KeepMonthly, func(t time.Time) string {
		y, m, _ := t.In(loc).Date()
		return fmt.Sprint(y, m)
	})
	for _, b := range merged {
		newer := 0
		for _, o := range merged {
			if o.Time.After(b.Time) {
				newer++
			}
		}
		if newer < p.MinKeep || now.Sub(b.Time) <= p.KeepWithin || b.Copies <= 1 {
			covered[b.ID] = true
		}
	}
	for _, d := range got {
		if d.Keep != covered[d.ID] {
			t.Fatalf("%s: %s (%s old, %d copies): keep=%v (%s: %s), but keep rules cover it: %v",
				name, d.ID, now.Sub(d.Time), d.Copies, d.Keep, d.Rule, d.Reason, covered[d.ID])
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// periods marks in covered the newest backup of each of the n periods, with
// the newest backups, that have one.
func periods(covered map[string]bool, backups map[string]Backup, n int, period func(time.Time) string) {
	newest := map[string]Backup{}
	for _, b := range backups {
		k := period(b.Time)
		if cur, ok := newest[k]; !ok || b.Time.After(cur.Time) {
			newest[k] = b
		}
	}
	var tops []Backup
	for _, b := range newest {
		tops = append(tops, b)
	}
	slices.SortFunc(tops, func(a, b Backup) int { return b.Time.Compare(a.Time) })
	for _, b := range tops[:min(n, len(tops))] {
		covered[b.ID] = true
	}
}
