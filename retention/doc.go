// Package retention decides which complete backups of one job on one
// destination to keep and which to delete, and names the rule behind each
// decision. It is a pure function of the backups, the policy and the time:
// it reads and deletes nothing (package prune acts on its decisions).
//
// Plan MUST NOT mark for deletion:
//   - the newest complete backup;
//   - any backup no older than KeepWithin (exactly KeepWithin old is kept);
//   - any of the MinKeep newest backups, so at least MinKeep remain;
//   - a backup with Copies <= 1, the only complete copy anywhere;
//   - anything at all when the newest backup is dated more than
//     ClockTolerance after now: Plan then returns ErrFutureBackup and no
//     decisions, because a wrong clock would make every age wrong.
//
// CheckClock is the other half of that guard, for a host clock that
// jumped forward (which no backup's date can reveal): callers compare the
// host's time with the destination's own time (storage.Clock) and MUST
// NOT act on a plan for a destination where CheckClock fails.
//
// KeepWeekly and KeepMonthly only ever keep more: the newest backup of each
// of the last N ISO weeks (or calendar months) that have a backup, with
// boundaries in the policy's Location. Everything else is deleted with
// RuleExpired. Duplicated IDs are merged so that the duplicate can only
// keep more; each distinct ID gets exactly one decision.
package retention
