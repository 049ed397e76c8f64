package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/coffer-backup/coffer/manifest"
)

// mismatchError says that a stored payload differs from its manifest.
type mismatchError struct {
	dest, what string
	want, got  any
}

func mismatch(dest, what string, want, got any) *mismatchError {
	return &mismatchError{dest: dest, what: what, want: want, got: got}
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("%s on %s is %v, manifest says %v", e.what, e.dest, e.got, e.want)
}

// checked passes a payload through while counting and hashing it. Instead
// of io.EOF it returns a *mismatchError when the bytes read differ from
// want, so a store's Put or Create reading from it aborts the upload. It
// also fails as soon as more bytes than want arrive.
type checked struct {
	r    io.Reader
	dest string
	want manifest.Digest
	h    hash.Hash
	n    int64

	mismatch error // the payload does not match want
	readErr  error // r failed
}

func newChecked(r io.Reader, dest string, want manifest.Digest) *checked {
	return &checked{r: r, dest: dest, want: want, h: sha256.New()}
}

func (c *checked) Read(p []byte) (int, error) {
	if c.mismatch != nil {
		return 0, c.mismatch
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	switch {
	case c.n > c.want.Bytes:
		c.mismatch = mismatch(c.dest, "payload size", c.want.Bytes, fmt.Sprintf("more than %d", c.want.Bytes))
		return n, c.mismatch
	case err == io.EOF:
		if c.n != c.want.Bytes {
			c.mismatch = mismatch(c.dest, "payload size", c.want.Bytes, c.n)
			return n, c.mismatch
		}
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want.SHA256 {
			c.mismatch = mismatch(c.dest, "payload SHA-256", c.want.SHA256, got)
			return n, c.mismatch
		}
	case err != nil:
		c.readErr = err
	}
	return n, err
}

// drain reads c to the end.
func drain(c *checked) error {
	_, err := io.Copy(io.Discard, c)
	return err
}
