// Package audit keeps Coffer's audit trail: one JSON line per event (a
// backup, partial run, prune deletion, purge, restore, repair, sweep,
// configuration reload, lease change or drill), appended to a local file,
// shipped in batches to a bucket, and read back and exported as CSV or JSON
// for compliance staff.
//
// Guarantees:
//   - Log.Record appends each event with a single write() to a file opened
//     with O_APPEND and fsyncs it before returning, so several goroutines
//     and several processes may append to the same log: lines never
//     interleave, and a recorded event survives a crash.
//   - The log file is created 0600 in a 0700 directory; events hold no
//     secrets, but host and user names are nobody else's business.
//   - Log.Ship uploads each line at most once per successful call, create
//     only, and remembers how far it got only after the upload succeeded:
//     a failed upload is retried in full by the next call. A crash between
//     the upload and saving the offset ships the same lines twice; Read
//     removes such duplicates by event ID.
//   - Read never drops a line it cannot parse: a malformed line is an error
//     that names the file or object and the line number. Two copies of one
//     event that differ are an error too (a *DisagreementError), never
//     resolved silently.
//   - Tamper evidence: each event carries Seq and Prev, the LineHash of the
//     log's previous line (Genesis for the first), read under an exclusive
//     flock at each Record, so concurrent processes and a restarted daemon
//     keep one chain. Each shipped object gets a Head beside it (the
//     object's SHA-256, the link before it, its last line's hash), signed
//     with the manifest signing key. Verify checks the chains, the heads
//     against trusted keys, the links between objects and the copies of
//     each event, names the first broken event of each trail, and says
//     which events are proven. Events written before the chain existed are
//     unchained: read as before, unproven, never reported as tampering.
//
// Stored objects are JSON lines under _coffer/audit/<host>/ in a
// destination, each with <name>.head.json beside it; new fields may be
// added to Event, so readers ignore fields they do not know. On S3 with
// Object Lock, storage/s3 locks both like backups.
package audit
