// Package manifest defines the record that makes a backup exist: one JSON
// object per backup and destination, written after the payload. Its key
// functions (Dir, Key, PayloadKey, ParseKey) are internal/layout's, with
// ParseKey also checking the job name and backup id.
//
// Compatibility promise: every manifest and payload written by a released
// Coffer stays readable by every later version. Fields are only added; a
// manifest with a FormatVersion newer than this code understands is refused
// rather than half-read.
package manifest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// FormatVersion is the manifest format this code writes and the newest it
// reads. Format 2 is signed (see Sign and Decode) and carries a sequence
// number; format 1 manifests are unsigned and read only when the reader
// skips signatures.
const FormatVersion = 2

// FileName is the manifest's object name inside a backup's folder.
const FileName = layout.ManifestName

// maxSize bounds how much of a manifest object is read.
const maxSize = 1 << 20

// Manifest describes one complete backup.
type Manifest struct {
	FormatVersion int           `json:"format_version"`
	ID            string        `json:"id"`
	Job           string        `json:"job"`
	Source        dumpinfo.Info `json:"source"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	// Plain is the dump as the database tool wrote it.
	Plain Digest `json:"plain"`
	// Tables are the row counts of every table in the dump, taken from
	// the dump's own snapshot; nil for exec sources and for backups
	// written before Coffer recorded them.
	Tables *dumpinfo.Tables `json:"tables,omitempty"`
	// Payload is the stored object: age(zstd(dump)); identical bytes on
	// every destination.
	Payload     Payload     `json:"payload"`
	Compression Compression `json:"compression"`
	Encryption  Encryption  `json:"encryption"`
	// Copies lists the destinations that committed this backup.
	Copies        []Copy `json:"copies"`
	CofferVersion string `json:"coffer_version"`
	Host          string `json:"host,omitempty"`
	// Sequence numbers the job's backups: 1 + the highest sequence the
	// backup side could read on the job's destinations (format 2; 0 in
	// format 1). A newest visible backup with a lower sequence than one
	// already seen is a sign of rollback (see package rollback).
	Sequence int64 `json:"sequence"`

	// SignedBy is the id of the trusted key whose signature was verified
	// when the manifest was decoded; empty when it was accepted unsigned
	// or with a failing signature (Trust.SkipSignature). Not stored.
	SignedBy string `json:"-"`
	// stored is the object the manifest was decoded from, byte for byte,
	// for WriteCopy.
	stored []byte
}

// Digest is a byte count and a hex SHA-256.
type Digest struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Payload is the stored payload object.
type Payload struct {
	Key string `json:"key"`
	Digest
	// HeaderSHA256 is the hash of the payload's age header.
	HeaderSHA256 string `json:"age_header_sha256"`
}

// Compression records the zstd stage.
type Compression struct {
	Algorithm string `json:"algorithm"` // "zstd"
	Level     int    `json:"level"`
}

// Encryption records the age stage.
type Encryption struct {
	Algorithm  string   `json:"algorithm"`  // "age"
	Recipients []string `json:"recipients"` // public keys only
}

// Copy is one destination's stored payload.
type Copy struct {
	Destination string `json:"destination"`
	Key         string `json:"key"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
}

// Duration is how long the backup took.
func (m *Manifest) Duration() time.Duration { return m.Finished.Sub(m.Started) }

// TableCount is the number of tables the backup's dump holds, from its
// recorded row counts; 0 when it recorded none (an exec source, or a
// backup made before Coffer counted rows).
func (m *Manifest) TableCount() int {
	if m.Tables == nil {
		return 0
	}
	return len(m.Tables.Counts)
}

// ArchiveHead is the digest of the dump's head (a PostgreSQL custom-format
// archive's header and table of contents) recorded at backup time; nil
// when none was (another format, or an older backup).
func (m *Manifest) ArchiveHead() *dumpinfo.Head {
	if m.Tables == nil {
		return nil
	}
	return m.Tables.Head
}

var (
	idPattern   = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{4}$`)
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	hexPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

const idTimeLayout = "20060102T150405.000Z"

// NewID returns a backup id for a backup started at t, e.g.
// "20261123T020000.123Z-7f3a": ids sort by time (to the millisecond) and
// carry a random suffix so two backups in the same millisecond differ.
func NewID(t time.Time) string {
	var b [2]byte
	rand.Read(b[:])
	return t.UTC().Format(idTimeLayout) + "-" + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID produces.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// IDTime returns the time encoded in a backup id.
func IDTime(id string) (time.Time, error) {
	if !ValidID(id) {
		return time.Time{}, fmt.Errorf("invalid backup id %q", id)
	}
	return time.Parse(idTimeLayout, id[:len(idTimeLayout)])
}

// Dir is the folder (key prefix) of one backup (layout.Backup).
func Dir(job, id string) string { return layout.Backup(job, id) }

// Key is the manifest's key for a backup (layout.Manifest).
func Key(job, id string) string { return layout.Manifest(job, id) }

// PayloadKey is the payload's key for a backup in the given dump format,
// e.g. "app/20261123T020000.123Z-7f3a/payload.pg-custom.zst.age"
// (layout.Payload).
func PayloadKey(job, id, format string) string { return layout.Payload(job, id, format) }

// ParseKey splits a manifest key "job/id/manifest.json" into job and id,
// which must be a valid job name and backup id.
func ParseKey(key string) (job, id string, ok bool) {
	job, id, ok = layout.ParseManifest(key)
	if !ok || !namePattern.MatchString(job) || !ValidID(id) {
		return "", "", false
	}
	return job, id, true
}

// Validate checks that every field a restore relies on is present and well
// formed.
func (m *Manifest) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("manifest %s: %s: %s", m.ID, field, fmt.Sprintf(format, args...))
	}
	switch {
	case m.FormatVersion < 1 || m.FormatVersion > FormatVersion:
		return bad("format_version", "is %d, want 1 to %d", m.FormatVersion, FormatVersion)
	case m.FormatVersion >= 2 && m.Sequence < 1:
		return bad("sequence", "is %d, want 1 or more", m.Sequence)
	case m.FormatVersion == 1 && m.Sequence != 0:
		return bad("sequence", "format 1 manifests have none")
	case !ValidID(m.ID):
		return bad("id", "%q is not a backup id", m.ID)
	case !namePattern.MatchString(m.Job):
		return bad("job", "%q is not a job name", m.Job)
	case m.Source.Kind == "" || m.Source.Format == "":
		return bad("source", "kind and format are required")
	case m.Finished.Before(m.Started):
		return bad("finished", "is before started")
	case m.Plain.Bytes < 0 || !hexPattern.MatchString(m.Plain.SHA256):
		return bad("plain", "needs bytes >= 0 and a SHA-256")
	case m.Payload.Key != PayloadKey(m.Job, m.ID, m.Source.Format):
		return bad("payload.key", "%q is not this backup's payload key", m.Payload.Key)
	case m.Payload.Bytes <= 0 || !hexPattern.MatchString(m.Payload.SHA256):
		return bad("payload", "needs bytes > 0 and a SHA-256")
	case !hexPattern.MatchString(m.Payload.HeaderSHA256):
		return bad("payload.age_header_sha256", "missing or malformed")
	case m.Compression.Algorithm != "zstd":
		return bad("compression.algorithm", "%q is not supported", m.Compression.Algorithm)
	case m.Encryption.Algorithm != "age" || len(m.Encryption.Recipients) == 0:
		return bad("encryption", "needs algorithm age and at least one recipient")
	case len(m.Copies) == 0:
		return bad("copies", "no destination holds this backup")
	}
	for _, c := range m.Copies {
		if c.Key != m.Payload.Key || c.Bytes != m.Payload.Bytes || c.SHA256 != m.Payload.SHA256 {
			return bad("copies", "copy at %q does not match the payload", c.Destination)
		}
	}
	return nil
}
