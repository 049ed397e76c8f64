package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/manifest"
)

// CurrentWeekGrace is how long after the current week's first scheduled
// backup the week counts as missing when no backup of it is known. Until
// then the current week is pending and fails nothing: its backup may not
// have run, finished or reached the offsite copy (repair) yet.
const CurrentWeekGrace = 6 * time.Hour

// known is a complete backup known at one destination.
type known struct {
	id     string
	t      time.Time
	source string // SourcePresent, SourceAuditPruned, SourceAuditNotFound or SourceAuditUnproven
	why    string // for SourceAuditUnproven: why the events are not proven
}

// wrote reports whether ev records a backup written to ev.Destination: a
// backup or a repair that succeeded.
func wrote(ev audit.Event) bool {
	return (ev.Action == audit.ActionBackup || ev.Action == audit.ActionRepair) && ev.Outcome == audit.OutcomeOK
}

// pruned reports whether ev records a backup deleted by retention.
func pruned(ev audit.Event) bool {
	return ev.Action == audit.ActionPrune && ev.Outcome == audit.OutcomeDeleted
}

// purged reports whether ev records a backup deleted on request.
func purged(ev audit.Event) bool {
	return ev.Action == audit.ActionPurge && ev.Outcome == audit.OutcomeOK
}

// deletions returns the destinations and backup ids whose deletion there
// (a prune or a purge) an event of evs records.
func deletions(evs []audit.Event) map[[2]string]bool {
	out := map[[2]string]bool{}
	for _, ev := range evs {
		if ev.BackupID != "" && ev.Destination != "" && (pruned(ev) || purged(ev)) {
			out[[2]string{ev.Destination, ev.BackupID}] = true
		}
	}
	return out
}

// knownBackups lists the complete backups known at d: those present with a
// valid manifest, and those the audit trail shows were written there (a
// backup, a repair) or deleted from there (deleted means it was there),
// except backups present now with a manifest that does not check out.
// A backup known only from audit events that are all unproven (their
// chain broken or unverifiable: JobInput.UnprovenEvents) is listed with
// SourceAuditUnproven and the reason, and is no evidence.
func (e *jobEval) knownBackups(d DestinationInput) []known {
	var out []known
	seen := map[string]bool{}
	for _, m := range d.Manifests {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, known{id: m.ID, t: m.Started, source: SourcePresent})
		}
	}
	for _, b := range d.Bad {
		seen[b.ID] = true
	}
	// Deletions recorded by proven events.
	provenDeleted := map[string]bool{}
	for _, ev := range e.in.Events {
		if _, bad := e.in.UnprovenEvents[ev.ID]; !bad && ev.Destination == d.Name && (pruned(ev) || purged(ev)) {
			provenDeleted[ev.BackupID] = true
		}
	}
	at := map[string]int{} // backup id -> index in out, for audit-only backups
	for _, ev := range e.in.Events {
		if ev.Destination != d.Name || seen[ev.BackupID] {
			continue
		}
		deleted := e.deleted[[2]string{d.Name, ev.BackupID}]
		if !wrote(ev) && !deleted {
			continue
		}
		t, err := manifest.IDTime(ev.BackupID)
		if err != nil {
			continue
		}
		why, unproven := e.in.UnprovenEvents[ev.ID]
		src := SourceAuditNotFound
		switch {
		case unproven:
			src = SourceAuditUnproven
		case provenDeleted[ev.BackupID]:
			src = SourceAuditPruned
		}
		if i, ok := at[ev.BackupID]; ok {
			// A proven event beats an unproven one for the same backup.
			if out[i].source == SourceAuditUnproven && src != SourceAuditUnproven {
				out[i].source, out[i].why = src, ""
			}
			continue
		}
		at[ev.BackupID] = len(out)
		out = append(out, known{id: ev.BackupID, t: t, source: src, why: why})
	}
	for id, i := range at {
		seen[id] = true
		if out[i].source == SourceAuditNotFound && provenDeleted[id] {
			out[i].source = SourceAuditPruned
		}
	}
	return out
}

// weeklyControl evaluates the weekly-backups control and builds each
// destination's timeline.
func (e *jobEval) weeklyControl() (Control, []Coverage) {
	c := Control{ID: ControlWeekly, Title: TitleWeekly, Status: Pass}
	dests := e.in.Destinations
	switch len(dests) {
	case 0:
		c.add(Fail, "job %s has no destination", e.in.Job.Name)
	case 1:
		c.add(Fail, "job %s has a single destination (%s): there is no offsite copy", e.in.Job.Name, dests[0].Name)
	}

	// The weeks of the window, and whether the current one is due.
	var starts []time.Time
	current := weekStart(e.now, e.loc)
	for ws := weekStart(e.from, e.loc); !ws.After(current); ws = nextWeek(ws) {
		starts = append(starts, ws)
	}
	due, slot := e.currentWeekDue(current)

	var coverage []Coverage
	var missing []string // "2026-W06 in offsite"
	var first *known
	firstWhere := ""
	anyPending := false
	for _, d := range dests {
		cov := Coverage{Destination: d.Name, Role: d.Role, Weeks: []Week{}}
		if d.Err != nil {
			cov.Error = d.Err.Error()
			c.add(Fail, "%s: could not be read: %v", d.Name, d.Err)
		}
		backups := e.knownBackups(d)
		for i := range backups {
			if backups[i].source == SourceAuditUnproven {
				continue
			}
			if first == nil || backups[i].t.Before(first.t) {
				first, firstWhere = &backups[i], d.Name
			}
		}
		byWeek := map[time.Time][]known{}
		for _, b := range backups {
			ws := weekStart(b.t, e.loc)
			byWeek[ws] = append(byWeek[ws], b)
		}
		var present, audited, pending, unprovenWeeks int
		var gaps []string
		for _, ws := range starts {
			w := Week{Week: isoWeek(ws, e.loc), Start: day(ws, e.loc)}
			why := ""
			for _, b := range byWeek[ws] {
				if b.source == SourcePresent {
					w.Present++
				} else if b.source == SourceAuditUnproven {
					w.Unproven++
					if why == "" {
						why = b.why
					}
				} else {
					w.Audited++
					if w.Source == "" || b.source == SourceAuditPruned {
						w.Source = b.source
					}
				}
			}
			w.Backups = w.Present + w.Audited
			switch {
			case w.Present > 0:
				w.Status, w.Source = WeekCovered, SourcePresent
				present++
			case w.Audited > 0:
				w.Status = WeekCovered
				audited++
			case ws.Equal(current) && !due:
				w.Status = WeekPending
				pending++
				anyPending = true
			case w.Unproven > 0:
				w.Status, w.Source = WeekUnproven, SourceAuditUnproven
				unprovenWeeks++
				missing = append(missing, w.Week+" in "+d.Name+" (unproven)")
				gaps = append(gaps, fmt.Sprintf("%s: week %s (from %s) rests only on audit events that are unproven, so no evidence: %s",
					d.Name, w.Week, w.Start, why))
			default:
				w.Status = WeekMissing
				missing = append(missing, w.Week+" in "+d.Name)
				gaps = append(gaps, fmt.Sprintf("%s: week %s (from %s) has no complete backup", d.Name, w.Week, w.Start))
			}
			cov.Weeks = append(cov.Weeks, w)
		}
		c.add(Pass, "%s (%s): %d of %d weeks covered (%d by backups present, %d by the audit trail only)",
			d.Name, d.Role, present+audited, len(starts)-pending, present, audited)
		if unprovenWeeks > 0 {
			c.add(Pass, "%s (%s): %s only by unproven audit events (a broken or unverifiable chain: see coffer audit verify)",
				d.Name, d.Role, plural(unprovenWeeks, "week known"))
		}
		if len(gaps) > 0 {
			c.Status = Fail
			c.Evidence = append(c.Evidence, gaps...)
		}
		coverage = append(coverage, cov)
	}
	if anyPending {
		when := "no scheduled backup falls in it"
		if !slot.IsZero() {
			when = fmt.Sprintf("its scheduled backup (%s) counts as missing from %s", stamp(slot), stamp(slot.Add(CurrentWeekGrace)))
		}
		c.add(Pass, "week %s is the current week and not judged yet: %s", isoWeek(current, e.loc), when)
	}
	if len(missing) > 0 {
		if first == nil {
			c.add(Pass, "no backup of job %s is known, present or in the audit trail", e.in.Job.Name)
		} else {
			c.add(Pass, "first known backup of job %s: %s (%s, in %s)",
				e.in.Job.Name, day(first.t, e.loc), first.id, firstWhere)
		}
		for _, err := range e.in.AuditErrors {
			c.add(Pass, "the audit trail is incomplete (%v): weeks whose backups were pruned since may be missing from it", err)
		}
		if p := e.period(); p > 7*24*time.Hour {
			c.add(Pass, "schedule %q leaves gaps of %s: less often than weekly", e.in.Job.Schedule, human.Duration(p))
		}
	}
	switch {
	case len(missing) > 0:
		c.Summary = fmt.Sprintf("%s: %s", plural(len(missing), "missing week"), strings.Join(missing, ", "))
	case c.Status == Fail:
		c.Summary = "weekly coverage cannot be confirmed"
	default:
		c.Summary = fmt.Sprintf("every week from %s has a complete backup in %s", day(starts[0], e.loc), destNames(dests))
	}
	return c, coverage
}

// currentWeekDue returns the first scheduled backup of the week starting
// at current (zero when none falls in it) and whether it is more than
// CurrentWeekGrace in the past, so the week must have a backup by now.
func (e *jobEval) currentWeekDue(current time.Time) (due bool, slot time.Time) {
	slot = e.sched.Next(current.Add(-time.Second))
	if slot.IsZero() || !slot.Before(nextWeek(current)) {
		return false, time.Time{}
	}
	return !e.now.Before(slot.Add(CurrentWeekGrace)), slot
}

// destNames lists the destinations' names, e.g. "primary and offsite".
func destNames(dests []DestinationInput) string {
	var names []string
	for _, d := range dests {
		names = append(names, d.Name)
	}
	switch len(names) {
	case 0:
		return "no destination"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
