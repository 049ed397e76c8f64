package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// jobTimes are a job's time zone and cron schedules, parsed once by
// validation, with the settings they were parsed from.
type jobTimes struct {
	timezone, schedule, drillSchedule string
	loc                               *time.Location
	backup, drill                     cron.Schedule
}

// Location is the job's time zone (Timezone, loaded): its schedules'
// activations, and retention's weeks and months, are reckoned in it.
func (j *Job) Location() *time.Location { return j.parsedTimes().loc }

// BackupSchedule is the job's backup schedule (Schedule, parsed). Its
// activations are in the time zone of the time given to Next: pass it a
// time in Location.
func (j *Job) BackupSchedule() cron.Schedule { return j.parsedTimes().backup }

// DrillSchedule is the job's restore drill schedule (Drill.Schedule,
// parsed), set whether or not drills are enabled. Like BackupSchedule,
// pass Next a time in Location.
func (j *Job) DrillSchedule() cron.Schedule { return j.parsedTimes().drill }

// parsedTimes returns what validation parsed. Using a job that was not
// validated, or whose Timezone, Schedule or Drill.Schedule changed since,
// is a programming error: it panics rather than run on a schedule other
// than the one configured.
func (j *Job) parsedTimes() *jobTimes {
	t := j.times
	switch {
	case t == nil:
		panic(fmt.Sprintf("config: job %q used before validation: load the configuration with config.Load or config.Parse, or call Job.Resolve on a job built in code", j.Name))
	case t.timezone != j.Timezone || t.schedule != j.Schedule || t.drillSchedule != j.Drill.Schedule:
		panic(fmt.Sprintf("config: job %q: timezone, schedule or drill.schedule changed after validation; call Job.Resolve again", j.Name))
	}
	return t
}

// setTimes keeps what validation parsed; nothing when any of it is wrong
// (the configuration is then refused).
func (j *Job) setTimes(loc *time.Location, backup, drill cron.Schedule) {
	if loc == nil || backup == nil || drill == nil {
		return
	}
	j.times = &jobTimes{timezone: j.Timezone, schedule: j.Schedule, drillSchedule: j.Drill.Schedule,
		loc: loc, backup: backup, drill: drill}
}

// Resolve checks and parses the time zone and cron schedules of a job
// built in code (tests), as Load and Parse do for every job they return,
// for Location, BackupSchedule and DrillSchedule. An empty Timezone,
// Schedule or Drill.Schedule is first set to its default, as for a file
// that leaves it out. The error names each bad field, with the message
// Load gives. Call it again after changing any of the three.
func (j *Job) Resolve() error {
	if j.Timezone == "" {
		j.Timezone = DefaultTimezone
	}
	if j.Schedule == "" {
		j.Schedule = DefaultSchedule
	}
	if j.Drill.Schedule == "" {
		j.Drill.Schedule = DefaultDrillSchedule
	}
	p := &parser{pos: map[string]int{}, bad: map[string]bool{}}
	path := "jobs." + j.Name
	backup := p.checkSchedule(path+".schedule", j.Schedule)
	loc := p.checkTimezone(path+".timezone", j.Timezone)
	drill := p.checkSchedule(path+".drill.schedule", j.Drill.Schedule)
	var errs []error
	for _, e := range p.errs {
		errs = append(errs, errors.New(e.Field+": "+e.Msg))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	j.setTimes(loc, backup, drill)
	return nil
}

// SchedulePeriod is the longest gap between activations of sched around now (the
// next few activations are sampled, so "0 2 * * 1-5" gives the weekend
// gap). A backup older than this missed at least one slot.
func SchedulePeriod(sched cron.Schedule, now time.Time) time.Duration {
	var longest time.Duration
	t := sched.Next(now)
	for range 8 {
		n := sched.Next(t)
		if n.IsZero() {
			break
		}
		longest = max(longest, n.Sub(t))
		t = n
	}
	if longest == 0 {
		return time.Duration(1<<63 - 1)
	}
	return longest
}
