package sign

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Algorithm is the only signature algorithm Coffer makes and accepts.
const Algorithm = "ed25519"

// Signature is a detached signature, as stored next to what it signs.
type Signature struct {
	// Alg is always "ed25519".
	Alg string `json:"alg"`
	// KeyID names the signing key (PublicKey.ID); a hint for messages
	// and for picking the key, not a reason to trust.
	KeyID string `json:"key_id"`
	// Value is the standard base64 of the 64-byte Ed25519 signature.
	Value string `json:"value"`
}

// Sign signs data.
func (s *Signer) Sign(data []byte) Signature {
	return Signature{
		Alg:   Algorithm,
		KeyID: s.pub.ID(),
		Value: base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, data)),
	}
}

// Errors Verify wraps, for errors.Is.
var (
	// ErrUnknownKey: the signature names a key that is not trusted.
	ErrUnknownKey = errors.New("signed by an unknown key")
	// ErrBadSignature: the signature does not match the bytes under any
	// trusted key it names, or is malformed.
	ErrBadSignature = errors.New("bad signature")
)

// Verifier checks signatures against a set of trusted public keys.
type Verifier struct {
	keys []PublicKey
}

// NewVerifier returns a Verifier trusting keys. With no keys, every
// signature is refused as signed by an unknown key.
func NewVerifier(keys ...PublicKey) *Verifier {
	v := &Verifier{}
	for _, k := range keys {
		if k.key != nil && !slices.ContainsFunc(v.keys, k.Equal) {
			v.keys = append(v.keys, k)
		}
	}
	return v
}

// Keys returns the trusted keys.
func (v *Verifier) Keys() []PublicKey {
	if v == nil {
		return nil
	}
	return slices.Clone(v.keys)
}

// Verify checks sig over data. It returns nil when a trusted key with
// sig's key id made sig over exactly data; otherwise an error wrapping
// ErrUnknownKey or ErrBadSignature that names the key id. A nil Verifier
// trusts no key.
func (v *Verifier) Verify(data []byte, sig Signature) error {
	if sig.Alg != Algorithm {
		return fmt.Errorf("%w: algorithm %q is not supported (want %s)", ErrBadSignature, sig.Alg, Algorithm)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig.Value)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w by key %s: the value is not the base64 of %d bytes", ErrBadSignature, printable(sig.KeyID), ed25519.SignatureSize)
	}
	var candidates []PublicKey
	if v != nil {
		for _, k := range v.keys {
			if k.ID() == sig.KeyID {
				candidates = append(candidates, k)
			}
		}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("%w %s (%s)", ErrUnknownKey, printable(sig.KeyID), v.trusted())
	}
	for _, k := range candidates {
		if ed25519.Verify(k.key, data, raw) {
			return nil
		}
	}
	return fmt.Errorf("%w by key %s: the signed bytes or the signature were changed", ErrBadSignature, sig.KeyID)
}

// trusted describes the trusted key ids for messages.
func (v *Verifier) trusted() string {
	if v == nil || len(v.keys) == 0 {
		return "no key is trusted: set signing.public_keys"
	}
	ids := make([]string, len(v.keys))
	for i, k := range v.keys {
		ids[i] = k.ID()
	}
	return "trusted: " + strings.Join(ids, ", ")
}

// printable returns a key id fit for a message: an id from a bucket is
// attacker-controlled text.
func printable(id string) string {
	if id == "" {
		return `""`
	}
	if len(id) <= 16 && strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune("0123456789abcdef", r) }) < 0 {
		return id
	}
	if len(id) > 16 {
		id = id[:16] + "..."
	}
	return fmt.Sprintf("%q", id)
}
