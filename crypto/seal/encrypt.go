package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// streamNonceSize is the size of the nonce age writes right after the header.
const streamNonceSize = 16

// ParseRecipients parses age public keys ("age1..."). The error names the
// offending entry by position, never echoing something that looks like a
// private key.
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no age recipients configured")
	}
	out := make([]age.Recipient, 0, len(keys))
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if strings.HasPrefix(strings.ToUpper(k), "AGE-SECRET-KEY-") {
			return nil, fmt.Errorf("recipient %d is a private key; use its public key (age-keygen -y)", i+1)
		}
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil || len(rs) != 1 {
			return nil, fmt.Errorf("recipient %d (%q) is not an age public key", i+1, k)
		}
		out = append(out, rs[0])
	}
	return out, nil
}

// Writer encrypts to an age file. Close MUST be called and its error checked.
type Writer struct {
	io.WriteCloser
	headerSHA256 string
}

// HeaderSHA256 returns the hex SHA-256 of the age header (the bytes before
// the payload nonce). The manifest records it so restore can check the
// header before any plaintext reaches a database.
func (w *Writer) HeaderSHA256() string { return w.headerSHA256 }

// Encrypt starts an age file on dst for the given recipients. The header is
// written to dst before Encrypt returns.
func Encrypt(dst io.Writer, recipients []age.Recipient) (*Writer, error) {
	rec := &recorder{w: dst}
	wc, err := age.Encrypt(rec, recipients...)
	if err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	if rec.buf.Len() <= streamNonceSize {
		return nil, fmt.Errorf("age encrypt: header not written")
	}
	hdr := rec.buf.Bytes()[:rec.buf.Len()-streamNonceSize]
	sum := sha256.Sum256(hdr)
	rec.stop() // from here on only the payload flows: keep none of it
	return &Writer{WriteCloser: wc, headerSHA256: hex.EncodeToString(sum[:])}, nil
}

// recorder passes writes through and keeps a copy of them until stopped
// (it records only what age writes during Encrypt: header and nonce).
type recorder struct {
	w       io.Writer
	buf     bytes.Buffer
	stopped bool
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.stopped {
		r.buf.Write(p)
	}
	return r.w.Write(p)
}

func (r *recorder) stop() {
	r.stopped = true
	r.buf = bytes.Buffer{}
}
