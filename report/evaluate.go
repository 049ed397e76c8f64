package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/coffer-backup/coffer/config"
)

// Evaluate decides every control of every job in in. It is a pure
// function of in: it reads no clock and no store.
func Evaluate(in Input) *Report {
	r := &Report{
		Generated: in.Now,
		From:      in.Now.Add(-in.Since),
		Since:     config.Duration(in.Since).String(),
		Jobs:      []JobReport{},
	}
	for _, ji := range in.Jobs {
		r.Jobs = append(r.Jobs, evaluateJob(in, ji))
	}
	return r
}

// jobEval is one job's evaluation: its input and what every control
// needs to know about time.
type jobEval struct {
	in    JobInput
	now   time.Time
	from  time.Time      // the window's start
	loc   *time.Location // the job's time zone
	sched cron.Schedule  // the job's backup schedule
	// deleted holds the destinations and backup ids whose deletion
	// there the audit trail records (see deletions).
	deleted map[[2]string]bool
}

func evaluateJob(in Input, ji JobInput) JobReport {
	j := ji.Job
	e := &jobEval{in: ji, now: in.Now, from: in.Now.Add(-in.Since), loc: j.Location(), sched: j.BackupSchedule(), deleted: deletions(ji.Events)}
	jr := JobReport{
		Job:         j.Name,
		Timezone:    e.loc.String(),
		Schedule:    j.Schedule,
		RTOSeconds:  j.RTO.D().Seconds(),
		DrillMaxAge: j.Drill.MaxAge.String(),
		Recipients:  recipients(j.Recipients),
	}
	weekly, coverage, prot := e.weeklyControl()
	drills, history := e.drillControl()
	jr.Controls = []Control{weekly, e.retentionControl(), e.encryptionControl(), drills}
	jr.Coverage = coverage
	if !prot.start.IsZero() {
		jr.ProtectedSince, jr.ProtectedSinceSource = day(prot.start, e.loc), prot.by
	}
	jr.Drills = history
	return jr
}

// weekStart returns the Monday 00:00 of t's ISO week in loc.
func weekStart(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	back := (int(t.Weekday()) + 6) % 7 // days since Monday
	return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
}

// nextWeek returns the Monday after the week starting at start, at
// midnight whatever daylight saving time does.
func nextWeek(start time.Time) time.Time {
	y, m, d := start.Date()
	return time.Date(y, m, d+7, 0, 0, 0, 0, start.Location())
}

// isoWeek names t's ISO week in loc, e.g. "2026-W07".
func isoWeek(t time.Time, loc *time.Location) string {
	y, w := t.In(loc).ISOWeek()
	return fmt.Sprintf("%d-W%02d", y, w)
}

// period is the longest gap between the schedule's activations around
// now (config.SchedulePeriod); zero when the schedule never fires.
func (e *jobEval) period() time.Duration {
	if p := config.SchedulePeriod(e.sched, e.now.In(e.loc)); p < math.MaxInt64 {
		return p
	}
	return 0
}

// stamp formats t for evidence: UTC to the minute.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// day formats t's date in loc.
func day(t time.Time, loc *time.Location) string { return t.In(loc).Format("2006-01-02") }

// plural returns "1 week" or "3 weeks", "1 backup copy" or "2 backup
// copies".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// seconds converts a count of seconds to a duration, to the nearest
// nanosecond.
func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }
