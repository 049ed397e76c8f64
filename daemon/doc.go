// Package daemon is `coffer run`: it owns the daemon's whole lifecycle.
//
//   - Run (daemon.go) starts it: state directory and audit trail, HA
//     probe, metrics, the monitor endpoints and the page (serve.go:
//     internal/monitor in front of internal/page), SIGHUP reload, the
//     maintenance loop, and a clean shutdown that ships the audit trail.
//   - The Scheduler (scheduler.go) owns timing only: each job's cron
//     schedule in its time zone, no second run of a job while one is going
//     (the trigger is skipped and reported), at most daemon.max_concurrent
//     different jobs at once, catch-up at start for jobs that missed a
//     slot, reload, and a bounded shutdown.
//   - The Runner (cycle.go, catalog.go, drill.go) is what a slot does: the
//     job's lease, backup, repair, prune, sweep and audit shipping, or a
//     restore drill with its evidence, each recorded in the audit trail,
//     metrics and notifications. `coffer drill` runs its one drill through
//     the same Runner, so a drill run by hand keeps the same evidence.
package daemon
