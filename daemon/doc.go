// Package daemon schedules jobs for `coffer run`.
//
// The Scheduler owns timing only: each job's cron schedule in its time
// zone, no second run of a job while one is going (the trigger is skipped
// and reported), at most daemon.max_concurrent different jobs at once,
// catch-up at start for jobs that missed a slot, reload, and a bounded,
// clean shutdown. What a run does (lease, backup, prune, repair, sweep,
// audit, notify) is the RunFunc it is given.
package daemon
