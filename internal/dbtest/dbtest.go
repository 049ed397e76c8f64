// Package dbtest gives integration tests real databases to dump and restore:
// connection settings built from internal/testenv, fresh uniquely named
// databases dropped at cleanup, seed data of a chosen size, and per-table
// content hashes to compare a source with its restored copy.
//
// Every helper fails the test on error; none of them skip except through
// testenv (which fails instead under CI).
package dbtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"testing"

	"github.com/coffer-backup/coffer/config"
)

// uniqueName returns prefix followed by random hex, e.g. "coffer_test_1a2b3c4d5e6f".
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// sourceFromURL turns a test server URL into a config.Source of type typ.
func sourceFromURL(t testing.TB, typ, raw, database string) config.Source {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("dbtest: bad %s URL: %v", typ, err)
	}
	src := config.Source{Type: typ, Host: u.Hostname(), Database: database}
	if h := u.Query().Get("host"); h != "" {
		src.Host = h
	}
	if p := u.Port(); p != "" {
		if src.Port, err = strconv.Atoi(p); err != nil {
			t.Fatalf("dbtest: bad port in %s URL: %v", typ, err)
		}
	}
	if u.User != nil {
		src.User = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			src.Password = config.NewSecret(pw)
		}
	}
	return src
}

// rowHasher hashes a table's rows, each a list of nullable byte strings,
// unambiguously (length-prefixed, NULL distinct from empty).
type rowHasher struct {
	h    hash.Hash
	rows int64
}

func newRowHasher() *rowHasher { return &rowHasher{h: sha256.New()} }

func (r *rowHasher) row(cols ...[]byte) {
	r.rows++
	var n [9]byte
	for _, c := range cols {
		if c == nil {
			n[0] = 0
			r.h.Write(n[:1])
			continue
		}
		n[0] = 1
		binary.BigEndian.PutUint64(n[1:], uint64(len(c)))
		r.h.Write(n[:])
		r.h.Write(c)
	}
	r.h.Write([]byte{2}) // end of row
}

// sum is the map value for one table: row count and content hash.
func (r *rowHasher) sum() string {
	return fmt.Sprintf("rows=%d sha256=%x", r.rows, r.h.Sum(nil))
}
