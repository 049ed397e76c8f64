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

// protection is when a job's weeks begin to count.
type protection struct {
	start time.Time // zero when nothing is known and nothing is configured
	by    string    // ProtectedByBackup, ProtectedByEvent or "jobs.NAME.protected_since"
}

// protection returns when the job's protection began: the earliest of
// its first backup known at any destination (present, with a manifest
// that does not check out, or only in the audit trail, proven or not:
// anything that shows the job existed counts), its first audit event
// and its configured protected_since. backups are the knownBackups of
// each destination.
func (e *jobEval) protection(backups [][]known) protection {
	var p protection
	consider := func(t time.Time, by string) {
		if !t.IsZero() && (p.start.IsZero() || t.Before(p.start)) {
			p.start, p.by = t, by
		}
	}
	for i, d := range e.in.Destinations {
		for _, b := range backups[i] {
			consider(b.t, ProtectedByBackup)
		}
		for _, b := range d.Bad {
			if t, err := manifest.IDTime(b.ID); err == nil {
				consider(t, ProtectedByBackup)
			}
		}
	}
	consider(e.in.FirstEvent, ProtectedByEvent)
	for _, ev := range e.in.Events {
		consider(ev.Time, ProtectedByEvent)
	}
	consider(e.in.Job.ProtectedSince.In(e.loc), "jobs."+e.in.Job.Name+".protected_since")
	return p
}

// failedWeek is a week of a destination's timeline that fails the
// control: missing, or known only by unproven audit events (why).
type failedWeek struct {
	i   int // index in the window's weeks
	why string
}

// weeklyControl evaluates the weekly-backups control and builds each
// destination's timeline. Weeks that end before the job's protection
// began are not yet protected and not judged.
func (e *jobEval) weeklyControl() (Control, []Coverage, protection) {
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

	all := make([][]known, len(dests))
	for i, d := range dests {
		all[i] = e.knownBackups(d)
	}
	prot := e.protection(all)
	// judged is the index of the first week judged: the one the
	// protection began in (every week when it began before the window).
	judged := len(starts)
	if !prot.start.IsZero() {
		judged = 0
		for judged < len(starts) && !nextWeek(starts[judged]).After(prot.start) {
			judged++
		}
	}

	var coverage []Coverage
	var missing []string // "2026-W06 in offsite", "2026-W37..W48 in primary"
	missingWeeks := 0
	var first *known
	firstWhere := ""
	anyPending := false
	for di, d := range dests {
		cov := Coverage{Destination: d.Name, Role: d.Role, Weeks: []Week{}}
		if d.Err != nil {
			cov.Error = d.Err.Error()
			c.add(Fail, "%s: could not be read: %v", d.Name, d.Err)
		}
		backups := all[di]
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
		var failed []failedWeek
		for i, ws := range starts {
			w := Week{Week: isoWeek(ws, e.loc), Start: day(ws, e.loc)}
			if i < judged {
				// Nothing is known of it: the protection began with
				// the first thing known.
				w.Status = WeekNotYetProtected
				cov.Weeks = append(cov.Weeks, w)
				continue
			}
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
				failed = append(failed, failedWeek{i, why})
			default:
				w.Status = WeekMissing
				failed = append(failed, failedWeek{i, ""})
			}
			cov.Weeks = append(cov.Weeks, w)
		}
		c.add(Pass, "%s (%s): %d of %d weeks covered (%d by backups present, %d by the audit trail only)",
			d.Name, d.Role, present+audited, len(starts)-judged-pending, present, audited)
		if unprovenWeeks > 0 {
			c.add(Pass, "%s (%s): %s only by unproven audit events (a broken or unverifiable chain: see coffer audit verify)",
				d.Name, d.Role, plural(unprovenWeeks, "week known"))
		}
		if len(failed) > 0 {
			c.Status = Fail
			missingWeeks += len(failed)
			missing, c.Evidence = appendFailed(missing, c.Evidence, d.Name, cov.Weeks, failed)
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
	name := e.in.Job.Name
	switch {
	case prot.start.IsZero():
		c.add(Warn, "job %s is not protected yet: no backup of it is known, present or in the audit trail, and no audit event; every week is not yet protected (set jobs.%s.protected_since to judge its weeks from a date)", name, name)
	case judged == len(starts):
		c.add(Warn, "job %s: protected since %s (%s), after this report's last week: no week is judged", name, day(prot.start, e.loc), prot.by)
	case judged > 0:
		c.add(Pass, "job %s: protected since %s (%s); the %s before, %s, were not yet protected and are not judged",
			name, day(prot.start, e.loc), prot.by, plural(judged, "week"), weekRange(isoWeek(starts[0], e.loc), isoWeek(starts[judged-1], e.loc)))
	default:
		c.add(Pass, "job %s: protected since %s (%s)", name, day(prot.start, e.loc), prot.by)
	}
	if len(missing) > 0 {
		if first == nil {
			c.add(Pass, "no backup of job %s is known, present or in the audit trail", name)
		} else {
			c.add(Pass, "first known backup of job %s: %s (%s, in %s)", name, day(first.t, e.loc), first.id, firstWhere)
		}
		for _, err := range e.in.AuditErrors {
			c.add(Pass, "the audit trail is incomplete (%v): weeks whose backups were pruned since may be missing from it", err)
		}
		if p := e.period(); p > 7*24*time.Hour {
			c.add(Pass, "schedule %q leaves gaps of %s: less often than weekly", e.in.Job.Schedule, human.Duration(p))
		}
	} else if judged > 0 && len(e.in.AuditErrors) > 0 && e.in.Job.ProtectedSince.IsZero() {
		c.add(Pass, "the audit trail is incomplete (%v): protection may have begun before %s", e.in.AuditErrors[0], day(prot.start, e.loc))
	}
	switch {
	case len(missing) > 0:
		c.Summary = fmt.Sprintf("%s: %s", plural(missingWeeks, "missing week"), strings.Join(missing, ", "))
	case c.Status == Fail:
		c.Summary = "weekly coverage cannot be confirmed"
	case prot.start.IsZero():
		c.Summary = fmt.Sprintf("job %s is not protected yet: no backup or audit event of it is known", name)
	case judged == len(starts):
		c.Summary = fmt.Sprintf("job %s is protected only from %s (%s): no week of the window is judged", name, day(prot.start, e.loc), prot.by)
	case judged > 0:
		c.Summary = fmt.Sprintf("every week from %s has a complete backup in %s; the %s before were not yet protected (protected since %s, %s)",
			day(starts[judged], e.loc), destNames(dests), plural(judged, "week"), day(prot.start, e.loc), prot.by)
	default:
		c.Summary = fmt.Sprintf("every week from %s has a complete backup in %s", day(starts[0], e.loc), destNames(dests))
	}
	return c, coverage, prot
}

// appendFailed adds destination dest's failed weeks to missing (the
// summary's list) and evidence, consecutive weeks that fail alike as one
// range.
func appendFailed(missing, evidence []string, dest string, weeks []Week, failed []failedWeek) ([]string, []string) {
	byIndex := map[int]failedWeek{}
	var idx []int
	for _, f := range failed {
		byIndex[f.i] = f
		idx = append(idx, f.i)
	}
	key := func(i int) string { return weeks[i].Status + "\x00" + byIndex[i].why }
	for _, r := range runs(idx, key) {
		a, b := weeks[r.from], weeks[r.to]
		span := weekRange(a.Week, b.Week)
		unproven := a.Status == WeekUnproven
		entry := span + " in " + dest
		if unproven {
			entry += " (unproven)"
		}
		missing = append(missing, entry)
		var line string
		switch {
		case r.from == r.to && unproven:
			line = fmt.Sprintf("%s: week %s (from %s) rests only on audit events that are unproven, so no evidence: %s", dest, a.Week, a.Start, byIndex[r.from].why)
		case r.from == r.to:
			line = fmt.Sprintf("%s: week %s (from %s) has no complete backup", dest, a.Week, a.Start)
		case unproven:
			line = fmt.Sprintf("%s: weeks %s (%s to %s) rest only on audit events that are unproven, so no evidence: %s", dest, span, a.Start, lastDay(b), byIndex[r.from].why)
		default:
			line = fmt.Sprintf("%s: weeks %s (%s to %s) have no complete backup", dest, span, a.Start, lastDay(b))
		}
		evidence = append(evidence, line)
	}
	return missing, evidence
}

// lastDay returns the Sunday that ends week w ("2026-02-15" for the week
// from 2026-02-09).
func lastDay(w Week) string {
	t, err := time.Parse(time.DateOnly, w.Start)
	if err != nil {
		return w.Start
	}
	return t.AddDate(0, 0, 6).Format(time.DateOnly)
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
