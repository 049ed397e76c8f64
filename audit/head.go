package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/layout"
)

// headFormat is the version of Head's layout and of its signed bytes.
const headFormat = 1

// Head describes one shipped audit object and signs the end of its chain:
// it is stored beside the object, written after it, and checked by Verify
// against the object's bytes.
type Head struct {
	// Format is 1.
	Format int `json:"format"`
	// Object is the key of the object (relative to the destination).
	Object string `json:"object"`
	// Host is the host that shipped it.
	Host string `json:"host"`
	// Events is how many lines the object holds.
	Events int `json:"events"`
	// FirstID and LastID are the IDs of its first and last events.
	FirstID string `json:"first_id"`
	LastID  string `json:"last_id"`
	// FirstSeq and LastSeq are their Seq (0 for unchained events).
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// Prev is the first event's Prev: the link to the object before.
	Prev string `json:"prev"`
	// Head is the LineHash of the last line: the chain head.
	Head string `json:"head"`
	// SHA256 is the hex SHA-256 of the object's bytes.
	SHA256 string `json:"sha256"`
	// Signature, by the manifest signing key, is over SignedBytes; absent
	// when the shipping host had no signing key.
	Signature *sign.Signature `json:"signature,omitempty"`
}

// SignedBytes is what Signature signs: every other field, one per line,
// after a fixed label.
func (h Head) SignedBytes() []byte {
	return []byte(strings.Join([]string{
		"coffer-audit-head/" + strconv.Itoa(h.Format),
		h.Object, h.Host, strconv.Itoa(h.Events),
		h.FirstID, h.LastID,
		strconv.FormatInt(h.FirstSeq, 10), strconv.FormatInt(h.LastSeq, 10),
		h.Prev, h.Head, h.SHA256,
	}, "\n") + "\n")
}

// newHead describes data (complete lines, events already checked) stored
// at key.
func newHead(key, host string, data []byte) (Head, error) {
	lines := splitLines(data)
	if len(lines) == 0 {
		return Head{}, fmt.Errorf("audit object %s: no events", key)
	}
	var first, last Event
	if err := json.Unmarshal(lines[0], &first); err != nil {
		return Head{}, fmt.Errorf("audit object %s: line 1: %w", key, err)
	}
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		return Head{}, fmt.Errorf("audit object %s: line %d: %w", key, len(lines), err)
	}
	sum := sha256.Sum256(data)
	return Head{
		Format: headFormat, Object: key, Host: host, Events: len(lines),
		FirstID: first.ID, LastID: last.ID, FirstSeq: first.Seq, LastSeq: last.Seq,
		Prev: first.Prev, Head: LineHash(lines[len(lines)-1]), SHA256: hex.EncodeToString(sum[:]),
	}, nil
}

// headKey returns the key of the head of the object at key:
// _coffer/audit/<host>/<name>.jsonl has its head in <name>.head.json.
func headKey(key string) string { return layout.AuditHead(key) }

// splitLines splits data into its lines, without newlines; a last line
// without a newline counts.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := indexNL(data)
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i])
		data = data[i+1:]
	}
	return out
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
