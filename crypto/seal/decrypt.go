package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// maxHeaderPeek bounds how many leading payload bytes are kept to check the
// age header hash. age headers with a handful of recipients are < 2 KiB.
const maxHeaderPeek = 1 << 20

// WrongIdentityError says that none of the given identities opens a payload
// and which recipients the payload was encrypted to.
type WrongIdentityError struct {
	Recipients []string // from the manifest; public keys only
}

func (e *WrongIdentityError) Error() string {
	if len(e.Recipients) == 0 {
		return "no identity matches the backup's recipients"
	}
	return "no identity matches the backup's recipients; it was encrypted to: " + strings.Join(e.Recipients, ", ")
}

// HeaderMismatchError says the payload's age header differs from the one
// the manifest recorded: the payload was replaced.
type HeaderMismatchError struct {
	Want, Got string
}

func (e *HeaderMismatchError) Error() string {
	return fmt.Sprintf("age header hash %s does not match the manifest (%s): payload replaced or corrupt", short(e.Got), short(e.Want))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Decrypt opens an age payload with identities. recipients (from the
// manifest) are only used to explain a wrong identity. When wantHeader is
// non-empty, the payload's age header must hash to it or Decrypt fails
// before returning any plaintext.
//
// The returned reader authenticates each chunk as it goes; any read error
// means the payload is bad.
func Decrypt(src io.Reader, ids []age.Identity, recipients []string, wantHeader string) (io.Reader, error) {
	if wantHeader != "" {
		// Check the header before any identity sees it: a corrupt or
		// replaced header is a bad copy, not a wrong key.
		var seen bytes.Buffer
		hdr, err := age.ExtractHeader(io.TeeReader(io.LimitReader(src, maxHeaderPeek), &seen))
		if err != nil {
			return nil, fmt.Errorf("age header: %w", err)
		}
		sum := sha256.Sum256(hdr)
		if got := hex.EncodeToString(sum[:]); got != wantHeader {
			return nil, &HeaderMismatchError{Want: wantHeader, Got: got}
		}
		src = io.MultiReader(&seen, src)
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, &WrongIdentityError{Recipients: recipients}
		}
		return nil, fmt.Errorf("age: %w", err)
	}
	return r, nil
}

// HeaderSHA256 reads an age header from r and returns its hex SHA-256,
// without decrypting anything. r may be read past the header.
func HeaderSHA256(r io.Reader) (string, error) {
	hdr, err := age.ExtractHeader(r)
	if err != nil {
		return "", fmt.Errorf("age header: %w", err)
	}
	sum := sha256.Sum256(hdr)
	return hex.EncodeToString(sum[:]), nil
}
