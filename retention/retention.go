package retention

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/human"
)

// Policy is a job's retention policy.
type Policy struct {
	KeepWithin  time.Duration  // keep everything no older than this (default 28 days, set by config)
	MinKeep     int            // never fewer complete backups than this (>= 1)
	KeepWeekly  int            // also keep the newest backup of each of the last N ISO weeks that have one (0 = off)
	KeepMonthly int            // also keep the newest backup of each of the last N calendar months that have one (0 = off)
	Location    *time.Location // job timezone for week and month boundaries; nil = UTC
}

// Backup is one complete backup (it has a manifest) on the destination
// being pruned.
type Backup struct {
	ID     string    // e.g. 20261123T020000.123Z-7f3a; sorts by time
	Time   time.Time // when it was taken
	Copies int       // how many of the job's destinations hold a complete copy (>= 1)
}

// Rule names why a backup is kept or deleted.
type Rule string

// The rules, keep rules in the order of precedence Plan reports them in
// when several apply, then the one delete rule.
const (
	RuleNewest   Rule = "newest"       // the newest complete backup
	RuleWithin   Rule = "keep_within"  // no older than KeepWithin
	RuleMinKeep  Rule = "min_keep"     // one of the MinKeep newest
	RuleOnlyCopy Rule = "only_copy"    // no other destination holds a complete copy
	RuleWeekly   Rule = "keep_weekly"  // newest of one of the last KeepWeekly weeks
	RuleMonthly  Rule = "keep_monthly" // newest of one of the last KeepMonthly months
	RuleExpired  Rule = "expired"      // no keep rule applies: delete
)

// Decision is what Plan decided for one backup.
type Decision struct {
	Backup
	Keep   bool   // false: delete
	Rule   Rule   // the most informative rule that decided it
	Reason string // a sentence for people, e.g. "older than 28d and not needed by min_keep 2"
}

// ClockTolerance is how far after now the newest backup may be dated
// before Plan concludes that a clock is wrong and refuses to decide.
const ClockTolerance = 5 * time.Minute

// ErrFutureBackup means the newest backup is dated more than ClockTolerance
// after now; Plan returns it wrapped, with the backup's id.
var ErrFutureBackup = errors.New("newest backup is dated in the future (check the clock)")

// ErrClockSkew means the host's clock and a destination's own clock
// disagree by more than ClockTolerance; CheckClock returns it wrapped,
// naming both times and the difference.
var ErrClockSkew = errors.New("host clock and storage clock disagree")

// ErrInvalidPolicy means a policy field is out of range; Plan returns it
// wrapped, naming the field.
var ErrInvalidPolicy = errors.New("invalid retention policy")

// ErrInvalidBackup means a backup has no id or no time; Plan returns it
// wrapped.
var ErrInvalidBackup = errors.New("invalid backup")

// Validate reports every field of p that is out of range.
func (p Policy) Validate() error {
	var bad []string
	if p.KeepWithin < 0 {
		bad = append(bad, fmt.Sprintf("keep_within is %s, must not be negative", p.KeepWithin))
	}
	if p.MinKeep < 1 {
		bad = append(bad, fmt.Sprintf("min_keep is %d, want at least 1", p.MinKeep))
	}
	if p.KeepWeekly < 0 {
		bad = append(bad, fmt.Sprintf("keep_weekly is %d, must not be negative", p.KeepWeekly))
	}
	if p.KeepMonthly < 0 {
		bad = append(bad, fmt.Sprintf("keep_monthly is %d, must not be negative", p.KeepMonthly))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, strings.Join(bad, "; "))
	}
	return nil
}

// CheckClock compares host, the time the plan would be made at, with
// storage, the destination's own time read at the same moment. It returns
// an error wrapping ErrClockSkew when they are more than ClockTolerance
// apart in either direction: a host clock that jumped forward would make
// backups inside KeepWithin look expired, one that jumped back would keep
// what should go and date new backups in the past. A zero storage time is
// refused too: an unknown clock is not a trusted one.
func CheckClock(host, storage time.Time) error {
	if storage.IsZero() {
		return fmt.Errorf("%w: the storage's time is unknown; refusing to prune", ErrClockSkew)
	}
	d := host.Sub(storage)
	if d >= -ClockTolerance && d <= ClockTolerance {
		return nil
	}
	dir := "ahead of"
	if d < 0 {
		dir, d = "behind", -d
	}
	if d >= time.Hour {
		d = d.Round(time.Minute) // a jump of days, not of days less a second
	}
	return fmt.Errorf("%w: host clock %s is %s %s the storage's clock %s (tolerance %s); refusing to prune, since every backup's age would be off by as much",
		ErrClockSkew, host.UTC().Format(time.RFC3339), human.Duration(d), dir, storage.UTC().Format(time.RFC3339), human.Duration(ClockTolerance))
}

// Plan decides every backup. It returns decisions sorted newest first, one
// per distinct backup id. Backups may come in any order; a repeated id is
// merged into one backup with the latest Time and the fewest Copies seen,
// so a duplicate can only keep more. Zero backups give no decisions and no
// error. It returns an error and no decisions for an invalid policy, a
// backup without id or time, or a newest backup dated more than
// ClockTolerance after now (ErrFutureBackup).
func Plan(p Policy, backups []Backup, now time.Time) ([]Decision, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	bs, err := merge(backups)
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	slices.SortFunc(bs, func(a, b Backup) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID))
	})
	if ahead := bs[0].Time.Sub(now); ahead > ClockTolerance {
		return nil, fmt.Errorf("%w: backup %s is dated %s after now (tolerance %s); refusing to prune",
			ErrFutureBackup, bs[0].ID, human.Duration(ahead), human.Duration(ClockTolerance))
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	weekly := newestPerPeriod(bs, p.KeepWeekly, func(t time.Time) string {
		y, w := t.In(loc).ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	})
	monthly := newestPerPeriod(bs, p.KeepMonthly, func(t time.Time) string {
		return t.In(loc).Format("2006-01")
	})
	out := make([]Decision, len(bs))
	for i, b := range bs {
		out[i] = decide(p, i, b, now, weekly[i], monthly[i])
	}
	return out, nil
}

// decide applies the rules, in order of precedence, to the i-th newest
// backup b; week and month are b's period when a periodic rule keeps it.
func decide(p Policy, i int, b Backup, now time.Time, week, month string) Decision {
	age := now.Sub(b.Time)
	keep := func(r Rule, format string, args ...any) Decision {
		return Decision{Backup: b, Keep: true, Rule: r, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case i == 0:
		return keep(RuleNewest, "newest complete backup")
	case age <= p.KeepWithin:
		return keep(RuleWithin, "%s old, within keep_within %s", human.Duration(age), human.Duration(p.KeepWithin))
	case i < p.MinKeep:
		return keep(RuleMinKeep, "one of the %d newest complete backups (min_keep %d)", p.MinKeep, p.MinKeep)
	case b.Copies <= 1:
		return keep(RuleOnlyCopy, "the only complete copy on any destination")
	case week != "":
		return keep(RuleWeekly, "newest backup of week %s (keep_weekly %d)", week, p.KeepWeekly)
	case month != "":
		return keep(RuleMonthly, "newest backup of month %s (keep_monthly %d)", month, p.KeepMonthly)
	}
	notNeeded := []string{fmt.Sprintf("min_keep %d", p.MinKeep)}
	if p.KeepWeekly > 0 {
		notNeeded = append(notNeeded, fmt.Sprintf("keep_weekly %d", p.KeepWeekly))
	}
	if p.KeepMonthly > 0 {
		notNeeded = append(notNeeded, fmt.Sprintf("keep_monthly %d", p.KeepMonthly))
	}
	return Decision{Backup: b, Rule: RuleExpired, Reason: fmt.Sprintf("%s old, older than %s and not needed by %s",
		human.Duration(age), human.Duration(p.KeepWithin), strings.Join(notNeeded, ", "))}
}

// merge checks the backups and folds repeated ids into one, returning a
// new slice.
func merge(backups []Backup) ([]Backup, error) {
	at := make(map[string]int, len(backups))
	out := make([]Backup, 0, len(backups))
	for _, b := range backups {
		switch {
		case b.ID == "":
			return nil, fmt.Errorf("%w: backup taken at %s has no id", ErrInvalidBackup, b.Time.Format(time.RFC3339))
		case b.Time.IsZero():
			return nil, fmt.Errorf("%w: backup %s has no time", ErrInvalidBackup, b.ID)
		}
		j, seen := at[b.ID]
		if !seen {
			at[b.ID] = len(out)
			out = append(out, b)
			continue
		}
		if b.Time.After(out[j].Time) {
			out[j].Time = b.Time
		}
		out[j].Copies = min(out[j].Copies, b.Copies)
	}
	return out, nil
}

// newestPerPeriod walks bs (sorted newest first) and returns, for the
// newest backup of each of the first n periods that have one, the
// period's name, by index into bs.
func newestPerPeriod(bs []Backup, n int, period func(time.Time) string) map[int]string {
	kept := make(map[int]string, n)
	seen := make(map[string]bool, n)
	for i, b := range bs {
		if len(seen) == n {
			break
		}
		if k := period(b.Time); !seen[k] {
			seen[k] = true
			kept[i] = k
		}
	}
	return kept
}
