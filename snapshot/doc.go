// Package snapshot dumps databases to an io.Writer (sources) and reads dumps
// back into databases (loaders). It knows nothing of storage or encryption.
//
// Sources: NewSource builds one from a config.Source. PostgreSQL is dumped
// with pg_dump (custom format, uncompressed, by default; plain SQL on
// request), MySQL and MariaDB with mariadb-dump or mysqldump in one
// transaction, SQLite with VACUUM INTO (a consistent copy of a live file),
// and an exec source runs a user's command (argv, no shell).
//
// Loaders: NewLoader builds one from a dump's Info and a target: pg_restore
// or psql, the mariadb or mysql client, or an SQLite file replaced
// atomically.
//
// Row counts: Dump returns the rows of every table the dump holds, from the
// dump's own snapshot. PostgreSQL counts the COPY rows of each table in
// pg_dump's custom archive as it streams past (newPGArchiveCounter), so the
// database is read once; a plain dump, or an archive the counter cannot
// read, is counted with count(*) in the transaction whose exported
// snapshot pg_dump reads (pg_dump --snapshot). MySQL and MariaDB count the
// INSERT tuples in the dump's SQL as it streams past (the dump tool's
// snapshot cannot be shared); SQLite counts in the copy it streams. Exec
// dumps have no counts.
//
// Scratch databases: NewScratch gives a drill a database (or SQLite file)
// to restore into, which its Loader creates, counted by the same code as
// the backup side, queried read-only, and dropped.
//
// Guarantees:
//
//   - A Source's Dump MUST return nil only when the dump tool exited 0 and
//     its whole output reached w. A non-zero exit, a killed tool, a cut-off
//     stream or a cancelled context MUST be an error, even after bytes were
//     written. A write error from w stops the tool and is returned.
//   - A Loader's Load MUST fail when r returns a read error, and the tool
//     reading the dump MUST be killed before it sees the end of its input,
//     so a cut-off dump is never loaded as if it were whole. Load MUST fail
//     when the tool exits non-zero.
//   - Prepare MUST NOT load over a target holding data unless forced. A
//     scratch Loader's Prepare MUST fail on a database or file that exists,
//     even empty, and leave it untouched.
//   - A forced PostgreSQL Prepare over a non-empty database MUST NOT change
//     it: the load goes to a staging database (the loader is Staged), the
//     target is replaced only by Commit, in one transaction of renames, and
//     Abort drops the staging database. An SQLite target is replaced only
//     by renaming the checked file over it at the end of Load.
//   - Counts returned with Exact true MUST describe exactly the rows in the
//     dump; a dump that fails returns no counts.
//   - Scratch.Query MUST NOT change the scratch database: it runs in a
//     read-only transaction (and, for MySQL, a read-only session, since DDL
//     commits implicitly) that is rolled back, or on a read-only SQLite
//     handle.
//   - Passwords MUST NOT appear in a child's argv: they reach children
//     through the environment (PGPASSWORD) or a 0600 defaults file that is
//     removed afterwards. Error messages quote the last 2 KiB of a tool's
//     output with known secrets replaced by "[REDACTED]".
//   - Cancelling the context kills the child and everything in its process
//     group.
//
// Not guaranteed: the SQLite source writes its snapshot to a temporary file
// (in os.TempDir) before streaming it, so it needs free space the size of
// the database; a forced MySQL/MariaDB Prepare drops the old database
// before the load (they cannot rename a database), so a failed forced load
// there leaves the target empty or partly loaded, not as it was.
package snapshot
