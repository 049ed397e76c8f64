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
//     that names the file or object and the line number.
//
// Stored objects are JSON lines under _coffer/audit/<host>/ in a
// destination; new fields may be added to Event, so readers ignore fields
// they do not know.
package audit
