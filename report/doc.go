// Package report builds Coffer's compliance report: for each job, four
// controls a compliance officer asks about, each passed, warned or failed
// with the evidence behind it.
//
//   - weekly-backups: every ISO week (Monday to Sunday, in the job's time
//     zone) of the window has a complete backup in every destination of
//     the job, primary and offsite. Weeks that ended before the job's
//     protection began (its first backup or audit event, or its
//     protected_since, whichever is earliest) are not yet protected and
//     not judged.
//   - retention: no backup is kept longer than keep_within plus a grace
//     unless the retention policy or an Object Lock holds it, and nothing
//     was pruned (or went missing) inside keep_within.
//   - encryption: every backup present is encrypted to the configured age
//     recipients and its manifest decodes, validates and matches its
//     payload's size.
//   - drill: the last restore drill is no older than drill.max_age, passed,
//     and took no longer than the RTO.
//
// The work is split in two: Gather reads manifests, drill reports and the
// audit trail from the stores (it deletes and writes nothing), and
// Evaluate, a pure function of that Input and the time it is given,
// decides. The Report it returns is written as text, JSON, CSV or one
// self-contained HTML page.
//
// Guarantees:
//   - Evaluate MUST NOT read the clock or any store: the same Input gives
//     the same Report.
//   - A control that cannot be checked (an unreachable destination, an
//     unreadable manifest, audit trail or drill source) fails or warns; it
//     never passes for lack of evidence.
//   - Report.Passed is false exactly when some control has status fail;
//     warnings do not fail a report.
//   - Nothing secret reaches a report: it holds public keys, backup ids,
//     destination names and error texts, never credentials or URLs with
//     credentials.
//   - The HTML page loads nothing: inline CSS and SVG, no script, no
//     external resource, and it prints on A4.
//
// The JSON form is Report as encoded by encoding/json; fields are only
// added, never renamed or removed.
package report
