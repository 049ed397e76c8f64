package restore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/seal"
	"github.com/coffer-backup/coffer/storage"
)

// Check is the result of verifying one backup at one destination.
type Check struct {
	Job         string `json:"job"`
	ID          string `json:"id"`
	Destination string `json:"destination"`
	OK          bool   `json:"ok"`
	// Level is "full" (decrypted, decompressed, every hash checked) or
	// "ciphertext" (no identity given: size, age header and payload hash).
	Level    string        `json:"level"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
	// OpenedBy lists the public keys of the given identities that the
	// backup is encrypted to (full checks): after a key rotation it says
	// which identity still opens each backup.
	OpenedBy []string `json:"opened_by,omitempty"`
	// Sequence is the backup's sequence number (its manifest's).
	Sequence int64 `json:"sequence,omitempty"`
	// SignedBy is the id of the trusted key whose signature on the
	// manifest verified; empty when signatures were skipped.
	SignedBy string `json:"signed_by,omitempty"`
	// Warnings say what is wrong without failing the check: a signature
	// that was not verified, a possible rollback (added by the caller).
	Warnings []string `json:"warnings,omitempty"`
}

// Verify reads backup id of job ("" for the newest) at every destination
// and checks it without loading it anywhere. The manifest's signature is
// checked as trust says. With identities it runs the whole restore read
// path; without, it checks the ciphertext against the manifest. A
// destination that should hold the backup but does not is a failed check.
func Verify(ctx context.Context, job, id string, dests []storage.Destination, ids []age.Identity, trust manifest.Trust) ([]Check, error) {
	entry, err := Locate(ctx, job, id, dests)
	if err != nil {
		return nil, err
	}
	var checks []Check
	for _, d := range dests {
		checks = append(checks, verifyAt(ctx, d, entry, ids, trust))
	}
	return checks, nil
}

func verifyAt(ctx context.Context, d storage.Destination, e Entry, ids []age.Identity, trust manifest.Trust) Check {
	start := time.Now()
	c := Check{Job: e.Job, ID: e.ID, Destination: d.Name, Level: "ciphertext"}
	if len(ids) > 0 {
		c.Level = "full"
	}
	fail := func(err error) Check {
		c.Error, c.Duration = err.Error(), time.Since(start)
		return c
	}
	m, err := manifest.Read(ctx, d.Store, d.Name, e.Job, e.ID, trust)
	if err != nil {
		return fail(err)
	}
	c.Sequence, c.SignedBy = m.Sequence, m.SignedBy
	if m.SignedBy == "" {
		c.Warnings = append(c.Warnings, "manifest signature not verified (signatures skipped)")
	}
	if len(ids) > 0 {
		r, closeFn, err := openPayload(ctx, d, m, ids)
		if err != nil {
			return fail(err)
		}
		defer closeFn()
		n, err := io.Copy(io.Discard, r)
		c.Bytes = n
		if err != nil {
			return fail(err)
		}
		for _, k := range seal.Recipients(ids) {
			if slices.Contains(m.Encryption.Recipients, k) {
				c.OpenedBy = append(c.OpenedBy, k)
			}
		}
	} else if err := checkCiphertext(ctx, d, m); err != nil {
		return fail(err)
	} else {
		c.Bytes = m.Payload.Bytes
	}
	c.OK, c.Duration = true, time.Since(start)
	return c
}

// checkCiphertext streams the payload and compares size, age header hash
// and SHA-256 with the manifest; it needs no identity.
func checkCiphertext(ctx context.Context, d storage.Destination, m *manifest.Manifest) error {
	rc, err := d.Store.Get(ctx, m.Payload.Key)
	if err != nil {
		return fmt.Errorf("backup %s/%s on %s: payload: %w", m.Job, m.ID, d.Name, err)
	}
	defer rc.Close()
	h := &hashReader{r: rc, h: sha256.New()}
	got, err := seal.HeaderSHA256(h)
	if err != nil {
		return fmt.Errorf("backup %s/%s on %s: %w", m.Job, m.ID, d.Name, err)
	}
	if got != m.Payload.HeaderSHA256 {
		return fmt.Errorf("backup %s/%s on %s: %w", m.Job, m.ID, d.Name, &seal.HeaderMismatchError{Want: m.Payload.HeaderSHA256, Got: got})
	}
	if _, err := io.Copy(io.Discard, h); err != nil {
		return fmt.Errorf("backup %s/%s on %s: reading payload: %w", m.Job, m.ID, d.Name, err)
	}
	return checkDigest(m, d.Name, "payload", m.Payload.Digest, h)
}
