// Package demo prepares a self-contained demonstration of Coffer: a small
// SQLite database of a music-education hub, an age identity, a manifest
// signing key, two local
// directories standing in for the primary and offsite buckets, and a
// configuration tying them together. It needs no service and no network.
package demo

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // SQLite driver, pure Go

	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
)

// Paths are the files and directories a demo uses.
type Paths struct {
	Dir      string // the demo's folder
	Config   string // coffer.yaml
	Identity string // age identity (private key), mode 0600
	// SigningKey signs the manifests (private key), mode 0600.
	SigningKey string
	Database   string // the sample SQLite database
	Primary    string // directory standing in for the primary bucket
	Offsite    string // directory standing in for the offsite bucket
	Restored   string // where the demo restores the database to
}

// NewPaths lays out a demo in dir.
func NewPaths(dir string) (Paths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Paths{}, err
	}
	return Paths{
		Dir:        abs,
		Config:     filepath.Join(abs, "coffer.yaml"),
		Identity:   filepath.Join(abs, "identity.txt"),
		SigningKey: filepath.Join(abs, "signing.key"),
		Database:   filepath.Join(abs, "music-hub.db"),
		Primary:    filepath.Join(abs, "buckets", "primary"),
		Offsite:    filepath.Join(abs, "buckets", "offsite"),
		Restored:   filepath.Join(abs, "restored", "music-hub.db"),
	}, nil
}

// Setup creates whatever of the demo does not exist yet: folders, sample
// database, identity, signing key and configuration. Running it again
// keeps the keys and earlier backups, so backups accumulate across runs.
func Setup(ctx context.Context, p Paths) error {
	for _, d := range []string{p.Dir, p.Primary, p.Offsite, filepath.Dir(p.Restored), filepath.Join(p.Dir, "drills")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if _, err := os.Stat(p.Identity); errors.Is(err, fs.ErrNotExist) {
		data, _, err := seal.GenerateIdentity(time.Now())
		if err != nil {
			return err
		}
		if err := keyfile.Create(p.Identity, data); err != nil {
			return err
		}
	}
	ids, err := seal.LoadIdentities(p.Identity)
	if err != nil {
		return err
	}
	recipients := seal.Recipients(ids)
	if len(recipients) == 0 {
		return fmt.Errorf("%s holds no X25519 identity", p.Identity)
	}
	if _, err := os.Stat(p.SigningKey); errors.Is(err, fs.ErrNotExist) {
		data, _, err := sign.GenerateKey(time.Now())
		if err != nil {
			return err
		}
		if err := keyfile.Create(p.SigningKey, data); err != nil {
			return err
		}
	}
	signer, err := sign.LoadSigner(p.SigningKey)
	if err != nil {
		return err
	}
	if err := seedDatabase(ctx, p.Database); err != nil {
		return fmt.Errorf("sample database: %w", err)
	}
	cfg := fmt.Sprintf(configTemplate, recipients[0], p.SigningKey, signer.Public(), p.Primary, p.Offsite, p.Database,
		filepath.Join(p.Dir, "drills"), p.Identity, filepath.Join(p.Dir, "state"))
	return os.WriteFile(p.Config, []byte(cfg), 0o600)
}

const configTemplate = `# Written by 'coffer demo'. Two local directories stand in for the
# primary and the offsite bucket; see coffer.example.yaml for S3.
recipients:
  - %s
signing:
  key_file: %s
  public_keys:
    - %s
destinations:
  primary:
    type: local
    path: %s
  offsite:
    type: local
    path: %s
jobs:
  music-hub:
    source:
      type: sqlite
      path: %s
    schedule: "0 2 * * 0"   # weekly, Sunday 02:00 UTC
    retention:
      keep_within: 28d
    drill:                  # monthly test restores from the offsite copy
      target:
        dir: %s
      identity_file: %s
daemon:
  state_dir: %s             # audit log and drill evidence
`

// seedDatabase creates the sample database if it does not exist, and adds
// a few lessons on every run so consecutive backups differ.
func seedDatabase(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS teachers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, instrument TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS pupils (id INTEGER PRIMARY KEY, name TEXT NOT NULL, school TEXT NOT NULL, grade INTEGER)`,
		`CREATE TABLE IF NOT EXISTS lessons (id INTEGER PRIMARY KEY, pupil_id INTEGER NOT NULL REFERENCES pupils(id),
			teacher_id INTEGER NOT NULL REFERENCES teachers(id), starts_at TEXT NOT NULL, minutes INTEGER NOT NULL, notes TEXT)`,
		`CREATE INDEX IF NOT EXISTS lessons_pupil ON lessons(pupil_id)`,
		`INSERT INTO teachers (id, name, instrument) SELECT value, 'Teacher ' || value,
			CASE value % 5 WHEN 0 THEN 'violin' WHEN 1 THEN 'piano' WHEN 2 THEN 'trumpet' WHEN 3 THEN 'guitar' ELSE 'drums' END
			FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 40) SELECT value FROM s) WHERE NOT EXISTS (SELECT 1 FROM teachers)`,
		`INSERT INTO pupils (id, name, school, grade) SELECT value, 'Pupil ' || value, 'School ' || (value % 37), value % 9
			FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 2000) SELECT value FROM s) WHERE NOT EXISTS (SELECT 1 FROM pupils)`,
		`INSERT INTO lessons (pupil_id, teacher_id, starts_at, minutes, notes)
			SELECT 1 + abs(random()) % 2000, 1 + abs(random()) % 40, datetime('now', '-' || (value % 90) || ' days'),
			30 + 15 * (value % 3), 'practice scales, piece ' || value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 500) SELECT value FROM s)`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%.40s...: %w", s, err)
		}
	}
	return nil
}

// TableDigests returns, per table of the SQLite database at path, its row
// count and a SHA-256 of its rows in rowid order, to compare a restored
// database with the original.
func TableDigests(ctx context.Context, path string) (map[string]string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, n)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, t := range tables {
		r, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT * FROM %q ORDER BY rowid`, t))
		if err != nil {
			return nil, err
		}
		cols, _ := r.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		h, n := sha256.New(), 0
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				r.Close()
				return nil, err
			}
			fmt.Fprintf(h, "%v\n", vals)
			n++
		}
		if err := errors.Join(r.Err(), r.Close()); err != nil {
			return nil, err
		}
		out[t] = fmt.Sprintf("%d rows, sha256 %s", n, hex.EncodeToString(h.Sum(nil))[:16])
	}
	return out, nil
}
