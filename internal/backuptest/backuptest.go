// Package backuptest gives tests backups to work on: fresh local-directory
// destinations, real backups taken with backup.Run, fake ones written
// object by object (a signed manifest over a payload that was never
// encrypted), the keys a store holds, and a whole working setup (an SQLite
// database, keys, two local destinations and a configuration file naming
// them) for tests of the daemon and the command line. Every helper fails
// the test on error.
package backuptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// Keys lists every key in s, sorted.
func Keys(t testing.TB, s storage.Store) []string {
	t.Helper()
	var out []string
	for o, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatalf("list %s: %v", s, err)
		}
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

// LocalDestinations returns a destination for each name, each a fresh
// local directory (storage/fs) removed at cleanup.
func LocalDestinations(t testing.TB, names ...string) []storage.Destination {
	t.Helper()
	var dests []storage.Destination
	for _, name := range names {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, storage.Destination{Name: name, Store: s})
	}
	return dests
}

// NewIdentity returns a fresh age identity.
func NewIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// DataSource returns an exec source whose dump is data, in format "bin".
func DataSource(t testing.TB, data []byte) snapshot.Source {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := snapshot.NewSource(config.Source{Type: "exec", Command: []string{"cat", file}, Extension: "bin"})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Take runs job with backup.Run, logging to t, and fails t unless every
// destination stored the backup. It returns the backup's manifest. An
// empty Name means "app"; a zero Level or Threads means 1.
func Take(t testing.TB, job backup.Job) *manifest.Manifest {
	t.Helper()
	if job.Name == "" {
		job.Name = "app"
	}
	job.Level = max(job.Level, 1)
	job.Threads = max(job.Threads, 1)
	res, err := backup.Run(t.Context(), job, zaptest.NewLogger(t))
	if err != nil || res.Outcome != backup.OK {
		t.Fatalf("backup of %s: %+v, %v", job.Name, res, err)
	}
	return res.Manifest
}

// Backup takes one backup of data (an exec source) of job "app" to dests,
// encrypted to recipient and signed by signer, and returns its manifest.
func Backup(t testing.TB, dests []storage.Destination, recipient string, signer *sign.Signer, data []byte) *manifest.Manifest {
	t.Helper()
	return Take(t, backup.Job{Source: DataSource(t, data), Destinations: dests, Recipients: []string{recipient}, Signer: signer})
}

// FakePayload is the payload Put stores for a fake backup id of job when
// given none: a few bytes naming it.
func FakePayload(job, id string) []byte {
	return []byte("age-encrypted zstd of " + job + "/" + id)
}

// Fake returns the manifest backup.Run would write for backup id of job
// (an SQLite dump, sequence 1) whose payload is payload (FakePayload when
// nil), with a copy recorded on each of the named destinations. Nothing
// behind it was dumped, compressed or encrypted: it is for code that reads
// manifests and payload sizes only.
func Fake(t testing.TB, job, id string, payload []byte, copies ...string) *manifest.Manifest {
	t.Helper()
	at, err := manifest.IDTime(id)
	if err != nil {
		t.Fatal(err)
	}
	if payload == nil {
		payload = FakePayload(job, id)
	}
	key := manifest.PayloadKey(job, id, "sqlite")
	m := &manifest.Manifest{
		FormatVersion: manifest.FormatVersion, ID: id, Job: job,
		Source:      dumpinfo.Info{Kind: "sqlite", Database: job, Format: "sqlite"},
		Started:     at,
		Finished:    at.Add(time.Minute),
		Plain:       manifest.Digest{Bytes: 100, SHA256: sum([]byte("plain " + id))},
		Payload:     manifest.Payload{Key: key, Digest: manifest.Digest{Bytes: int64(len(payload)), SHA256: sum(payload)}, HeaderSHA256: sum([]byte("header " + id))},
		Compression: manifest.Compression{Algorithm: "zstd", Level: 3},
		Encryption:  manifest.Encryption{Algorithm: "age", Recipients: []string{"age1example"}},
		Sequence:    1,
	}
	for _, d := range copies {
		m.Copies = append(m.Copies, manifest.Copy{Destination: d, Key: key, Bytes: m.Payload.Bytes, SHA256: m.Payload.SHA256})
	}
	return m
}

// Put writes payload (FakePayload of m's job and id when nil) under m's
// payload key, then m signed by signer, to each of stores.
func Put(t testing.TB, signer *sign.Signer, m *manifest.Manifest, payload []byte, stores ...storage.Store) {
	t.Helper()
	if payload == nil {
		payload = FakePayload(m.Job, m.ID)
	}
	for _, s := range stores {
		if _, err := s.Put(t.Context(), m.Payload.Key, bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}
		if err := manifest.Write(t.Context(), s, m, signer); err != nil {
			t.Fatal(err)
		}
	}
}

// sum is the hex SHA-256 of data.
func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
