// Package dumpinfo holds the plain facts a dump carries into its manifest:
// what was dumped (Info) and the row count of every table it holds
// (Tables). It imports nothing, so the manifest layer can describe a dump
// without linking the database drivers that take one.
package dumpinfo

// Info describes a dump: what the manifest records about its source.
type Info struct {
	Kind          string `json:"kind"`                     // postgres, mysql, sqlite, exec
	Database      string `json:"database,omitempty"`       // database name or file
	ServerVersion string `json:"server_version,omitempty"` // e.g. "15.19", "10.11.19-MariaDB"
	ToolVersion   string `json:"tool_version,omitempty"`   // e.g. "pg_dump (PostgreSQL) 15.19"
	Format        string `json:"format"`                   // pg-custom, pg-plain, sql, sqlite, or an exec extension
}

// TableRows is one table's row count.
type TableRows struct {
	// Name is schema-qualified for PostgreSQL ("public.pupils") and bare
	// for MySQL and SQLite ("pupils").
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Tables is what a dump holds: every table and its row count, sorted by
// name, taken from the same snapshot the dump read.
type Tables struct {
	// Exact is true when the counts describe exactly the data in the
	// dump (taken in the dump's own snapshot, or counted in the dump
	// itself).
	Exact bool `json:"exact"`
	// Method says how the counts were taken, e.g. "exported-snapshot",
	// "dump-stream", "snapshot-copy".
	Method string      `json:"method"`
	Counts []TableRows `json:"counts"`
	// Head, when the counts were read from a PostgreSQL custom-format
	// archive as it streamed past, is the digest of the archive's head:
	// its header and table of contents, which hold every SQL statement
	// pg_restore runs. Pinned by the signed manifest, it lets a restore
	// run the schema and load tables before the whole dump has been
	// checked (nil: it waits for the whole check).
	Head *Head `json:"archive_head,omitempty"`
}

// Head is the size and hex SHA-256 of the first bytes of a dump.
type Head struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}
