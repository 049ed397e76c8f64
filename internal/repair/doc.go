// Package repair completes backups that reached only some of a job's
// destinations (a partial run, an offsite outage): it copies each missing
// backup from a destination that holds it to each reachable destination
// that does not.
//
// Guarantees:
//   - Nothing is copied unchecked. The source's manifest must decode and
//     describe the backup; the payload is streamed from the source to the
//     target and its size and SHA-256 are compared with the manifest before
//     the target's upload is allowed to finish. On a mismatch the upload is
//     aborted and nothing is left on the target.
//   - Payload first, manifest last: a manifest is written (create-only) on
//     the target only after the target holds a payload that matches it. A
//     repair that fails never leaves a manifest behind, so it never leaves a
//     half-visible backup.
//   - A corrupt source copy is not retried; the next destination holding the
//     backup is used instead. Other failures are retried with backoff.
//   - The newest missing backups are copied first.
//   - Repair does not change existing objects: it never rewrites a manifest,
//     and deletes only a payload it finds, without manifest, at the
//     target's key that does not match the backup (a leftover).
package repair
