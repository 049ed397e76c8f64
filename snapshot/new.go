package snapshot

import (
	"fmt"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// NewSource returns the Source for src by its Type: "postgres", "mysql"
// (MySQL or MariaDB), "sqlite" or "exec". It checks the settings it needs
// but does not connect.
func NewSource(src config.Source) (Source, error) {
	switch src.Type {
	case "postgres":
		return newPostgresSource(src)
	case "mysql":
		return newMySQLSource(src)
	case "sqlite":
		return newSQLiteSource(src)
	case "exec":
		return newExecSource(src)
	}
	return nil, fmt.Errorf("unknown source type %q (want postgres, mysql, sqlite or exec)", src.Type)
}

// NewLoader returns the Loader that puts a dump described by info into
// target. For postgres and mysql, conn gives the server (host, port, user,
// password) and target is a database name on it, or a postgres:// or
// mysql:// URL whose parts replace conn's; for sqlite, target is a file
// path and conn is unused. Exec dumps have no loader.
//
// force lets Prepare replace a non-empty target: a database is dropped and
// created again at Prepare, an SQLite file is replaced when Load succeeds.
func NewLoader(info dumpinfo.Info, conn config.Source, target string, force bool) (Loader, error) {
	switch info.Kind {
	case "postgres":
		return newPostgresLoader(info, pgParamsFrom(conn), target, force)
	case "mysql":
		return newMySQLLoader(info, myParamsFrom(conn), target, force)
	case "sqlite":
		return newSQLiteLoader(info, target, force)
	case "exec":
		return nil, fmt.Errorf("no loader for exec dumps (format %q): restore them to a file or stdout", info.Format)
	}
	return nil, fmt.Errorf("no loader for dumps of kind %q", info.Kind)
}
