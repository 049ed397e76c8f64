package restore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/manifest"
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
	// Untrusted are the job's manifest keys on this destination that are
	// not used (any backup id), with the reason.
	Untrusted []manifest.Untrusted `json:"untrusted"`
	// Incomplete are the job's verified manifests on this destination
	// whose payload is missing or short.
	Incomplete []manifest.Incomplete `json:"incomplete"`
}

// Verify checks backup id of job ("" for the newest backup that verifies
// and is whole somewhere) at every destination, without loading it
// anywhere. The backup is chosen from the job's verified catalog
// (manifest.ReadCatalog, signatures checked as trust says): a planted or
// forged key is never chosen, and each check lists the keys of its
// destination that were not used. With identities it runs the whole
// restore read path; without, it checks the ciphertext against the
// manifest. A destination that does not hold the backup whole (no
// manifest, one that does not verify, or a missing or short payload) is a
// failed check that says why.
func Verify(ctx context.Context, job, id string, dests []storage.Destination, ids []age.Identity, trust manifest.Trust) ([]Check, error) {
	cat := manifest.ReadCatalog(ctx, job, dests, trust, nil)
	b, err := cat.Locate(id)
	if err != nil {
		return nil, err
	}
	var checks []Check
	for _, d := range dests {
		c := verifyAt(ctx, d, cat, b, ids)
		for _, u := range sortedUntrusted(cat.Untrusted) {
			if u.Destination == d.Name {
				c.Untrusted = append(c.Untrusted, u)
			}
		}
		for _, in := range sortedIncomplete(cat.Incomplete) {
			if in.Destination == d.Name {
				c.Incomplete = append(c.Incomplete, in)
			}
		}
		if c.Untrusted == nil {
			c.Untrusted = []manifest.Untrusted{}
		}
		if c.Incomplete == nil {
			c.Incomplete = []manifest.Incomplete{}
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// verifyAt checks backup b at d; cat says why d does not hold it whole.
func verifyAt(ctx context.Context, d storage.Destination, cat *manifest.Catalog, b manifest.Backup, ids []age.Identity) Check {
	start := time.Now()
	c := Check{Job: cat.Job, ID: b.ID, Destination: d.Name, Level: "ciphertext"}
	if len(ids) > 0 {
		c.Level = "full"
	}
	fail := func(err error) Check {
		c.Error, c.Duration = err.Error(), time.Since(start)
		return c
	}
	if !slices.Contains(b.Destinations, d.Name) {
		return fail(notHeld(cat, b.ID, d.Name))
	}
	m := b.Manifest
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

// notHeld says why destination dest does not hold backup id whole.
func notHeld(cat *manifest.Catalog, id, dest string) error {
	if err, ok := cat.Unreachable[dest]; ok {
		return err
	}
	for _, u := range cat.Untrusted {
		if u.Destination == dest && u.ID == id {
			return fmt.Errorf("manifest not trusted, copy not used: %s", u)
		}
	}
	for _, in := range cat.Incomplete {
		if in.Destination == dest && in.ID == id {
			return fmt.Errorf("backup %s/%s on %s is incomplete: %s", cat.Job, id, dest, in.Reason)
		}
	}
	return fmt.Errorf("backup %s/%s on %s: manifest %s: %w", cat.Job, id, dest, manifest.Key(cat.Job, id), storage.ErrNotExist)
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
