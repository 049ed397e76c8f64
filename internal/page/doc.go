// Package page is the daemon's read-only web page: for every job, where
// its newest backups are (age, size, sequence, signature, keys not used),
// the next backup, the last and next restore drill against the RTO with
// the headroom, and the command that restores the newest backup; then the
// compliance report of a chosen window (?weeks=N, 1 to 104, default 12),
// with downloads of the report (HTML, CSV, JSON) and of the audit trail
// (CSV).
//
// Routes, served behind the monitor server's allow list, token and
// browser sessions (internal/monitor), which come before any of them:
//
//	GET /                       the page
//	GET /download/report.html   the report, as coffer report --format html
//	GET /download/report.csv    ... --format csv
//	GET /download/report.json   ... --format json
//	GET /download/audit.csv     the audit trail, as coffer audit
//
// Guarantees:
//   - The report is the same code as coffer report's: report.Gather over
//     every job with the configured signing keys and the state
//     directory's audit log, then report.Evaluate, and the report's own
//     HTML templates (report.HTMLTemplate) for the controls and charts.
//     The page adds no judgement of its own.
//   - A gathered window is reused for Options.TTL (60 s): concurrent
//     requests share one gather, one gather (or audit export) runs at a
//     time, each bounded by Options.Timeout, and a request waits at most
//     Options.Wait before a 503 with Retry-After. Gathering opens its own
//     stores and takes no lock of the scheduler or the runner, so it
//     never holds up a backup.
//   - The page is server-rendered html/template: every value is escaped,
//     it has no script, loads nothing (inline CSS and SVG), is readable
//     on a phone and printable, and is sent with a Content-Security-
//     Policy allowing only its inline style sheet (by nonce), no
//     framing, forms to this server only, no Referer and no caching.
//   - It shows public keys, backup ids, destination names, file paths and
//     error texts, never credentials: the restore commands name the
//     identity file, not its contents.
//   - An invalid ?weeks= answers 400 saying what is wanted.
package page
