package report

import (
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
)

// grace is how long past keep_within a backup may still be present
// before it counts as kept too long: prune runs after each backup, so an
// expired backup goes at the next scheduled run; a day more covers a run
// that was late or failed once.
func (e *jobEval) grace() (time.Duration, string) {
	p := e.period()
	if p == 0 {
		return config.Day, "1d: schedule unknown"
	}
	return p + config.Day, fmt.Sprintf("%s: schedule period %s + 1d", human.Duration(p+config.Day), human.Duration(p))
}

// retentionControl evaluates the retention control: nothing present is
// older than keep_within + grace unless a keep rule or an Object Lock
// holds it, and no backup was pruned, or went missing, inside
// keep_within.
func (e *jobEval) retentionControl() Control {
	c := Control{ID: ControlRetention, Title: TitleRetention, Status: Pass}
	j := e.in.Job
	keepWithin := j.Retention.KeepWithin.D()
	grace, graceText := e.grace()
	limit := keepWithin + grace
	c.add(Pass, "policy: keep_within %s, min_keep %d; a backup may be present up to %s old (grace %s)",
		human.Duration(keepWithin), j.Retention.MinKeep, human.Duration(limit), graceText)
	policy := prune.Policy(j) // the policy prune applies
	copies := map[string]int{}
	for _, d := range e.in.Destinations {
		for _, m := range d.Manifests {
			copies[m.ID]++
		}
	}
	tooLong, held, present := 0, 0, 0
	for _, d := range e.in.Destinations {
		if d.Err != nil {
			c.add(Fail, "%s: could not be read: %v", d.Name, d.Err)
			continue
		}
		var backups []retention.Backup
		for _, m := range d.Manifests {
			t, err := manifest.IDTime(m.ID)
			if err != nil {
				t = m.Started
			}
			backups = append(backups, retention.Backup{ID: m.ID, Time: t, Copies: copies[m.ID]})
		}
		present += len(backups)
		decisions, err := retention.Plan(policy, backups, e.now)
		if err != nil {
			c.add(Fail, "%s: retention cannot be decided: %v", d.Name, err)
			continue
		}
		for _, dec := range decisions {
			age := e.now.Sub(dec.Time)
			if age <= limit {
				continue
			}
			switch {
			case dec.Keep:
				held++
				c.add(Pass, "%s: backup %s is %s old, held by %s: %s", d.Name, dec.ID, human.Duration(age), dec.Rule, dec.Reason)
			case d.ObjectLock != "":
				held++
				c.add(Pass, "%s: backup %s is %s old, held by Object Lock (%s mode)", d.Name, dec.ID, human.Duration(age), d.ObjectLock)
			default:
				tooLong++
				c.add(Fail, "%s: backup %s is %s old, kept beyond keep_within %s + grace %s and held by no rule (%s)",
					d.Name, dec.ID, human.Duration(age), human.Duration(keepWithin), human.Duration(grace), dec.Reason)
			}
		}
	}
	early := e.deletedEarly(&c, keepWithin)
	for _, err := range e.in.AuditErrors {
		c.add(Fail, "the audit trail could not be read (%v): early prunes cannot be ruled out", err)
	}
	switch {
	case tooLong > 0 || early > 0:
		c.Summary = fmt.Sprintf("%s kept too long, %s deleted inside keep_within", plural(tooLong, "backup copy"), plural(early, "backup copy"))
	case c.Status == Fail:
		c.Summary = "retention cannot be confirmed"
	default:
		c.Summary = fmt.Sprintf("%s present, none kept beyond %s unless held (%d held); nothing deleted inside keep_within %s since %s",
			plural(present, "backup copy"), human.Duration(limit), held, human.Duration(keepWithin), day(e.from, e.loc))
	}
	return c
}

// deletedEarly adds to c the backups pruned inside keep_within during the
// window (fail), purged on request inside it (warn), and backups the audit
// trail shows were written to a destination that are missing there, inside
// keep_within, with no deletion recorded (fail). It returns how many
// failed.
func (e *jobEval) deletedEarly(c *Control, keepWithin time.Duration) int {
	n := 0
	for _, ev := range e.in.Events {
		if ev.Time.Before(e.from) {
			continue
		}
		t, err := manifest.IDTime(ev.BackupID)
		if err != nil {
			continue
		}
		age := ev.Time.Sub(t)
		switch {
		case pruned(ev) && age <= keepWithin:
			n++
			c.add(Fail, "%s: backup %s was pruned on %s at %s old, inside keep_within %s (rule %s)",
				ev.Destination, ev.BackupID, stamp(ev.Time), human.Duration(age), human.Duration(keepWithin), ev.Rule)
		case purged(ev) && age <= keepWithin:
			c.add(Warn, "%s: backup %s was purged on request on %s at %s old, inside keep_within %s",
				ev.Destination, ev.BackupID, stamp(ev.Time), human.Duration(age), human.Duration(keepWithin))
		}
	}
	for _, d := range e.in.Destinations {
		if d.Err != nil {
			continue
		}
		here := map[string]bool{}
		for _, m := range d.Manifests {
			here[m.ID] = true
		}
		for _, b := range d.Bad {
			here[b.ID] = true
		}
		for _, ev := range e.in.Events {
			if !wrote(ev) || ev.Destination != d.Name || here[ev.BackupID] || ev.Time.Before(e.from) ||
				e.deleted[[2]string{d.Name, ev.BackupID}] {
				continue
			}
			t, err := manifest.IDTime(ev.BackupID)
			if err != nil || e.now.Sub(t) > keepWithin {
				continue
			}
			here[ev.BackupID] = true // one finding per backup
			n++
			c.add(Fail, "%s: backup %s was written there on %s (audit trail: %s) but is missing, %s old, inside keep_within %s, with no prune or purge recorded",
				d.Name, ev.BackupID, stamp(ev.Time), ev.Action, human.Duration(e.now.Sub(t)), human.Duration(keepWithin))
		}
	}
	return n
}
