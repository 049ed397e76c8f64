// Package drill runs restore drills: the disaster path done for real and
// timed. A drill takes the newest complete backup from one destination (by
// default the offsite copy a disaster leaves), restores it into a fresh
// scratch database that can never be mistaken for a real one, checks every
// table's row count against the counts recorded at backup time plus the
// user's own checks, drops the scratch database, and compares the time
// taken with the job's recovery time objective.
//
// Guarantees:
//   - A drill never touches an existing database: a scratch target that
//     already exists, or is named like a database in the configuration, is
//     refused and left alone.
//   - The scratch database is dropped also when the drill fails, unless
//     the caller asked to keep it.
//   - A drill never falls back to another destination: the destination it
//     was told to use is the one tested.
//   - Every drill, passed or failed, produces a Report with each phase's
//     time, and the caller stores it as evidence.
//   - The Report records whether the backup's manifest signature verified
//     (ManifestVerified, ManifestSignedBy); Unproven says why a report
//     that did not is no evidence. A drill run with signatures skipped is
//     recorded as such, never as verified.
package drill
