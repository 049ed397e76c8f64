// Package metrics holds the daemon's Prometheus metrics: one Metrics value
// owns its own registry (never the global default one) with the Go runtime
// and process collectors and the coffer_* metrics below. The monitor
// package serves Registry() on /metrics.
//
// Guarantees:
//   - Label values are job names, destination names, lease holders (host
//     names) and the fixed words listed below; never a secret, a key, a
//     URL or an error message.
//   - Timestamps are Unix seconds (fractional), durations seconds, sizes
//     bytes, as Prometheus conventions ask.
//   - Every method is safe for concurrent use, and a nil *Metrics discards
//     every call, so code that runs outside the daemon can pass nil.
//   - Forget removes every series of a job, so a job deleted by a reload
//     stops showing up (and stops firing stale alerts).
//
// Metrics:
//
//	name                                                  type     labels                      set by
//	coffer_backup_runs_total                              counter  job, outcome                BackupFinished (outcome: ok, partial, failed)
//	coffer_backup_last_run_timestamp_seconds              gauge    job                         BackupFinished (when the run finished)
//	coffer_backup_last_duration_seconds                   gauge    job                         BackupFinished
//	coffer_backup_last_success_timestamp_seconds          gauge    job, destination            BackupFinished, for each destination that stored the backup
//	coffer_backup_last_bytes                              gauge    job, destination            BackupFinished, payload bytes stored at each destination that stored it
//	coffer_backup_skipped_total                           counter  job, reason                 BackupSkipped (reason: overlap, lease_held, already_done)
//	coffer_next_run_timestamp_seconds                     gauge    job                         NextRun
//	coffer_job_running                                    gauge    job                         Running (1 while a run is in progress, else 0)
//	coffer_pruned_backups_total                           counter  job, destination            Pruned
//	coffer_locked_backups                                 gauge    job, destination            Locked (backups retention would delete but Object Lock keeps)
//	coffer_swept_leftovers_total                          counter  destination                 Swept (unfinished uploads and manifest-less payloads removed)
//	coffer_repairs_total                                  counter  job, destination, outcome   Repaired (outcome: ok, failed)
//	coffer_lease_held                                     gauge    job, holder                 LeaseHeld (1 held, 0 not; one series per job)
//	coffer_config_reloads_total                           counter  result                      ConfigReloaded (result: ok, failed)
//	coffer_config_last_reload_success_timestamp_seconds   gauge    -                           ConfigReloaded(true)
//	coffer_drill_runs_total                               counter  job, result                 DrillFinished (result: passed, failed)
//	coffer_drill_duration_seconds                         gauge    job                         DrillFinished (the last drill, all phases)
//	coffer_drill_phase_duration_seconds                   gauge    job, phase                  DrillFinished (phase: locate, load, validate, cleanup)
//	coffer_drill_rto_ratio                                gauge    job                         DrillFinished (duration / RTO; above 1 the RTO is missed)
//	coffer_drill_last_run_timestamp_seconds               gauge    job                         DrillFinished (when the last drill finished)
//	coffer_drill_last_success_timestamp_seconds           gauge    job                         DrillFinished, for a passed drill
//	coffer_untrusted_manifests                            gauge    job, destination            Untrusted (manifest keys not used: signature, format, a key naming another backup)
//
// Suggested alerts: time() - coffer_backup_last_success_timestamp_seconds
// above the schedule's interval plus slack (a destination has no fresh
// backup); increase(coffer_backup_runs_total{outcome!="ok"}[1d]) > 0;
// coffer_drill_rto_ratio > 0.5; time() -
// coffer_drill_last_success_timestamp_seconds > 35 days;
// coffer_untrusted_manifests > 0 (a planted, forged or damaged manifest).
// Call Job for every configured job at start-up and after each reload so
// its counters exist at zero before the first failure, which an increase()
// alert can then see.
package metrics
