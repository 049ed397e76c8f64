package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// IntegrityError says that a stored copy does not match its manifest.
type IntegrityError struct {
	Job, ID, Destination string
	What                 string // e.g. "payload SHA-256", "plaintext size"
	Want, Got            string
}

// mismatch builds the IntegrityError for backup m at destination dest.
func mismatch(m *manifest.Manifest, dest, what string, want, got any) *IntegrityError {
	return &IntegrityError{Job: m.Job, ID: m.ID, Destination: dest, What: what, Want: fmt.Sprint(want), Got: fmt.Sprint(got)}
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("backup %s/%s on %s: %s is %s, manifest says %s", e.Job, e.ID, e.Destination, e.What, e.Got, e.Want)
}

// openPayload fetches m's payload from d and returns a reader of the
// verified plaintext. The reader returns an error instead of EOF when any
// check fails. The caller must call close.
func openPayload(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity) (r io.Reader, close func(), err error) {
	info, err := d.Store.Stat(ctx, m.Payload.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s/%s on %s: payload: %w", m.Job, m.ID, d.Name, err)
	}
	if info.Size != m.Payload.Bytes {
		return nil, nil, mismatch(m, d.Name, "payload size", m.Payload.Bytes, info.Size)
	}
	rc, err := d.Store.Get(ctx, m.Payload.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s/%s on %s: payload: %w", m.Job, m.ID, d.Name, err)
	}
	cipher := &hashReader{r: rc, h: sha256.New()}
	plainAge, err := seal.Decrypt(cipher, ids, m.Encryption.Recipients, m.Payload.HeaderSHA256)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("backup %s/%s on %s: %w", m.Job, m.ID, d.Name, err)
	}
	zr, err := zstd.NewReader(plainAge, zstd.WithDecoderConcurrency(2))
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("zstd: %w", err)
	}
	v := &verifier{m: m, dest: d.Name, plain: &hashReader{r: zr, h: sha256.New()}, cipher: cipher}
	return v, func() { zr.Close(); rc.Close() }, nil
}

// hashReader counts and hashes what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// verifier passes plaintext through and, at the end of the stream, checks
// sizes and hashes of plaintext and ciphertext before reporting EOF.
type verifier struct {
	m      *manifest.Manifest
	dest   string
	plain  *hashReader
	cipher *hashReader
	err    error // sticky
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.plain.Read(p)
	if err == io.EOF {
		err = v.finish()
		if err == nil {
			err = io.EOF
		}
	} else if err != nil {
		err = fmt.Errorf("backup %s/%s on %s: payload unreadable after %d plaintext bytes: %w", v.m.Job, v.m.ID, v.dest, v.plain.n, err)
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// finish drains what is left of the ciphertext (age has already refused
// trailing data or a missing final chunk) and compares every digest.
func (v *verifier) finish() error {
	if _, err := io.Copy(io.Discard, v.cipher); err != nil {
		return fmt.Errorf("backup %s/%s on %s: reading payload end: %w", v.m.Job, v.m.ID, v.dest, err)
	}
	if err := checkDigest(v.m, v.dest, "payload", v.m.Payload.Digest, v.cipher); err != nil {
		return err
	}
	return checkDigest(v.m, v.dest, "plaintext", v.m.Plain, v.plain)
}

// checkDigest compares what was read through h with the manifest's digest.
func checkDigest(m *manifest.Manifest, dest, what string, want manifest.Digest, h *hashReader) error {
	if h.n != want.Bytes {
		return mismatch(m, dest, what+" size", want.Bytes, h.n)
	}
	if got := h.sum(); got != want.SHA256 {
		return mismatch(m, dest, what+" SHA-256", want.SHA256, got)
	}
	return nil
}
