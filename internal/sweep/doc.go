// Package sweep removes what interrupted backups leave behind at a
// destination: unfinished multipart uploads (which cost money until
// aborted) and payloads whose backup never got its manifest.
//
// Guarantees:
//   - Sweep only considers keys of the form <job>/<backup-id>/<name> that
//     manifest.ParseKey recognises as a Coffer backup folder; it never
//     touches anything under layout.Reserved ("_coffer/") or any key it
//     does not recognise.
//   - It never touches a folder that holds a manifest: not its payload, not
//     an upload in it. Just before disposing of an orphan payload it checks
//     again that no manifest has appeared.
//   - It never touches anything younger than the grace period: an upload
//     must have been initiated, and a payload last modified, before
//     now - grace, and the time in the backup id must be before it too.
//   - Of objects it deletes only payloads (payload.<format>.zst.age), with
//     storage.Dispose, so every version goes on a versioned bucket. An
//     object protected by Object Lock stays and is reported as an error
//     wrapping storage.ErrLocked.
//
// The grace period must be longer than the longest backup, or a running
// backup's upload can be aborted.
package sweep
