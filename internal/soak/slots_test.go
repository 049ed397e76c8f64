//go:build soak

package soak

import (
	"fmt"
	"time"
)

// I3: every schedule slot produced a backup or an alert that names why
// not.
//
// A slot is an activation of the job's cron schedule ("*/P * * * * *"),
// in real time, while a daemon incarnation was up: after it started
// (plus 1.5 s for loading the configuration; an earlier activation may
// or may not have been scheduled) and before it ended. The soak computes
// the slots itself; it does not take the daemon's word for them. The
// daemon's scheduler triggers each slot exactly once, in order, and a
// slot's run either starts (log "backup started", "cycle failed", or a
// "backup failed" with no run open) with trigger "schedule", or is
// skipped because the previous run is still going (a Warn naming the
// slot). So, per incarnation, the slots not skipped match the runs
// triggered by "schedule" one to one, in order, and a slot's run starts
// before the next slot that was not skipped. A slot the scheduler never
// triggered (its loop blocked, e.g. in the start-up catch-up check) has
// no run and no skip.
//
// A slot is accounted for when, within slotDeadline of it:
//   - its run reported a result to the webhook: "ok"/"partial" (a backup,
//     which I1 then checks is really there) or "failed" with a message;
//   - it was skipped for overlap and some backup result was reported
//     (the run that made it overlap: the skip itself is only logged, so a
//     run hanging longer than the deadline is a violation);
//   - the soak killed the daemon (kill -9) before the slot's result, and
//     the next incarnation ran a catch-up backup that reported a result
//     within runDeadline of the slot (its catch-up check reads every
//     destination first, under the same faults); when the soak killed
//     that one too before its catch-up reported, the one after it.
//
// A run that started in time but has not reported yet is given until
// runDeadline after its slot: under faults a run legitimately takes
// longer than a few periods (a stalled destination is dropped after the
// stall timeout, a manifest write whose answer was lost is read back for
// up to a minute), and the slots it overlaps are skipped meanwhile. A run
// still silent then is a violation: backups stopped without a word.
//
// Slots less than slotDeadline old are not judged until a later check.
func (o *oracle) checkSlots() {
	now := time.Now()
	deadline := slotDeadline(o.h.p.period)
	runDeadline := deadline + 75*time.Second
	o.pending = 0
	alerts := o.h.recv.all()
	resultOf := func(id string) *alert {
		for i := range alerts {
			if alerts[i].Kind == "backup" && alerts[i].BackupID == id {
				return &alerts[i]
			}
		}
		return nil
	}
	anyResult := func(from, to time.Time, idless bool) bool {
		for _, a := range alerts {
			if a.Kind == "backup" && !a.Received.Before(from) && !a.Received.After(to) && (!idless || a.BackupID == "") {
				return true
			}
		}
		return false
	}
	checked := 0
	for i, d := range o.h.incarnations {
		lines := d.logLines()
		end, ended := d.endTime()
		var sched []run
		for _, r := range runsOf(lines) {
			if r.trigger == "schedule" {
				sched = append(sched, r)
			}
		}
		skipped := map[int64]bool{}
		for _, l := range lines {
			if l.Msg == "previous run still going: this slot is skipped" {
				skipped[l.Slot.Unix()] = true
			}
		}
		// killedOK: the incarnation ended (the soak's kill -9, or it exited
		// on its own) and the next one caught up.
		killedOK := func() (bool, string) {
			if !ended || i+1 >= len(o.h.incarnations) {
				return false, "no run reported a result"
			}
			// The next daemon that came up: one that exited at start
			// (a full state disk refuses the audit log) is passed over.
			next := o.h.incarnations[i+1]
			for j := i + 1; j < len(o.h.incarnations); j++ {
				next = o.h.incarnations[j]
				runs := runsOf(next.logLines())
				for _, l := range runs {
					if l.trigger == "catch-up" && (l.id == "" || resultOf(l.id) != nil) {
						return true, ""
					}
				}
				// One that is still up is the one to judge. One the soak
				// killed before its catch-up reported passes the slot on to
				// the next, as this one did; one that exited on its own
				// after running something is judged.
				if _, gone := next.endTime(); !gone || (!next.killed && len(runs) > 0) {
					break
				}
			}
			how := "killed (kill -9 by the soak)"
			if !d.killed {
				how = "exited on its own (" + d.cmd.ProcessState.String() + ")"
			}
			return false, fmt.Sprintf("daemon %d %s during it and daemon %d ran no catch-up backup that reported", d.n, how, next.n)
		}
		k := 0
		for s := o.h.nextSlot(d.started.Add(1500 * time.Millisecond)); s.Before(end); s = s.Add(o.h.p.period) {
			if now.Sub(s) < deadline {
				break
			}
			checked++
			subject := s.Format("15:04:05")
			if skipped[s.Unix()] {
				if !anyResult(s, s.Add(runDeadline), false) && now.Sub(s) >= runDeadline {
					o.violate("I3", subject, "slot %s skipped (previous run still going) and no backup result reported within %s", subject, runDeadline)
				}
				continue
			}
			for k < len(sched) && sched[k].start.Before(s.Add(-500*time.Millisecond)) {
				k++ // a run of a slot before the ones judged here
			}
			// The slot's run starts before the next slot that was not
			// skipped: that one found no run going, so this one's had
			// started (and ended) by then.
			limit := s.Add(o.h.p.period)
			for skipped[limit.Unix()] {
				limit = limit.Add(o.h.p.period)
			}
			if k < len(sched) && sched[k].start.Before(limit) && sched[k].start.Before(s.Add(deadline)) {
				r := sched[k]
				k++
				var a *alert
				if r.id != "" {
					a = resultOf(r.id)
				}
				switch {
				case a != nil && !a.Received.After(s.Add(runDeadline)):
					if a.Outcome != "ok" && a.Message == "" {
						o.violate("I3", subject, "slot %s: backup %s reported %q without saying why", subject, r.id, a.Outcome)
					}
				case r.id == "" && anyResult(r.start.Add(-time.Second), s.Add(runDeadline), true):
				case ended && end.Before(s.Add(runDeadline)):
					if ok, why := killedOK(); !ok {
						if now.Sub(s) < runDeadline {
							o.pending++ // the next daemon's catch-up may still report
						} else {
							o.violate("I3", subject, "slot %s: run %s started and reported nothing: %s", subject, r.id, why)
						}
					}
				case now.Sub(s) < runDeadline:
					o.pending++ // still running: judged at a later check
				default:
					o.violate("I3", subject, "slot %s: run %s started %s after the slot and reported no result within %s",
						subject, r.id, r.start.Sub(s).Round(100*time.Millisecond), runDeadline)
				}
				continue
			}
			if ended && end.Before(s.Add(deadline)) {
				if ok, why := killedOK(); !ok {
					if now.Sub(s) < runDeadline {
						o.pending++ // the next daemon's catch-up may still report
					} else {
						o.violate("I3", subject, "slot %s: no run, no alert: %s", subject, why)
					}
				}
				continue
			}
			o.violate("I3", subject, "slot %s: no run started, no skip logged, nothing reported within %s", subject, deadline)
		}
	}
	// Slots while no daemon was scheduling: after one ended (the soak's
	// kill -9, or it exited on its own) and before the next one's
	// scheduler started. The next incarnation's catch-up accounts for them.
	for i, d := range o.h.incarnations {
		end, ended := d.endTime()
		if !ended {
			continue
		}
		how := "killed by the soak"
		if !d.killed {
			how = "exited on its own: " + d.cmd.ProcessState.String()
		}
		until := now
		caughtUp := false
		var nextRuns []run
		if i+1 < len(o.h.incarnations) {
			next := o.h.incarnations[i+1]
			until = next.started.Add(1500 * time.Millisecond)
			nextRuns = runsOf(next.logLines())
			// The catch-up of the next daemon that came up: one that
			// exited at start (a full state disk) is passed over.
			for j := i + 1; j < len(o.h.incarnations); j++ {
				nj := o.h.incarnations[j]
				runs := runsOf(nj.logLines())
				for _, r := range runs {
					if r.trigger == "catch-up" && (r.id == "" || resultOf(r.id) != nil) {
						caughtUp = true
					}
				}
				if _, gone := nj.endTime(); caughtUp || !gone || (!nj.killed && len(runs) > 0) {
					break
				}
			}
		}
		// A slot in the first moments of the next daemon may have been
		// scheduled by it after all: its own run that reported serves it.
		servedBy := func(s time.Time) bool {
			for _, r := range nextRuns {
				if r.trigger == "schedule" && !r.start.Before(s.Add(-500*time.Millisecond)) && r.start.Before(s.Add(o.h.p.period)) &&
					(r.id == "" || resultOf(r.id) != nil) {
					return true
				}
			}
			return false
		}
		for s := o.h.nextSlot(end); s.Before(until) && now.Sub(s) >= deadline; s = s.Add(o.h.p.period) {
			checked++
			if servedBy(s) {
				continue
			}
			if !caughtUp && now.Sub(s) < runDeadline {
				o.pending++ // the next daemon's catch-up may still report
				continue
			}
			if !caughtUp {
				o.violate("I3", s.Format("15:04:05"), "slot %s: no daemon scheduling (daemon %d %s) and no catch-up backup reported after the restart",
					s.Format("15:04:05"), d.n, how)
			}
		}
	}
	o.slotsChecked = max(o.slotsChecked, checked)
}

// run is one run of the job in an incarnation's log.
type run struct {
	trigger string
	id      string // backup id; empty for a run that failed before one
	start   time.Time
}

// runsOf finds the runs in a daemon log, in order.
func runsOf(lines []logLine) []run {
	var out []run
	open := false // a "backup started" whose cycle-level result is not logged yet
	for _, l := range lines {
		switch l.Msg {
		case "backup started":
			out = append(out, run{trigger: l.Trigger, id: l.Backup, start: l.TS})
			open = true
		case "backup finished":
			open = false
		case "backup failed":
			if open {
				open = false // the cycle's report of the run already listed
				continue
			}
			out = append(out, run{trigger: l.Trigger, start: l.TS})
		case "cycle failed":
			out = append(out, run{trigger: l.Trigger, start: l.TS})
			open = false
		}
	}
	return out
}
