package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/crypto/sign"
)

// A stored manifest of format 2 is an envelope:
//
//	{
//	  "format_version": 2,
//	  "manifest": { ...the manifest, "format_version": 2... },
//	  "signature": {"alg": "ed25519", "key_id": "3f9a1c2b", "value": "..."}
//	}
//
// The signature covers the exact bytes of the "manifest" value as stored.
// Readers verify those bytes (json.RawMessage keeps them as they are) and
// decode the manifest from the same bytes; nothing is re-encoded before
// it is checked, so whitespace, key order and escaping are all signed.

// Trust is how a reader decides about a manifest's signature. The zero
// Trust refuses every manifest.
type Trust struct {
	// Verifier holds the trusted public keys (config signing.public_keys);
	// nil trusts no key.
	Verifier *sign.Verifier
	// SkipSignature accepts a manifest whose signature is missing or
	// fails, and reports it to Warn. It is an emergency switch: with it,
	// anyone who can write to a bucket can make Coffer read a manifest of
	// their own. A malformed manifest is refused all the same.
	SkipSignature bool
	// Warn, if not nil, is called for each manifest accepted only because
	// of SkipSignature; object names it ("app/<id>/manifest.json on
	// offsite") and err says what failed. It may be called from several
	// goroutines at once (prune and backup read destinations in parallel).
	Warn func(object string, err error)
}

// ErrUnsigned is the signature failure of a format 1 manifest.
var ErrUnsigned = errors.New("not signed (a format 1 manifest, written before Coffer signed manifests)")

// SignatureError is a manifest refused because its signature is missing
// or does not verify. Err wraps ErrUnsigned, sign.ErrUnknownKey or
// sign.ErrBadSignature.
type SignatureError struct {
	// Object names the manifest, e.g. "app/<id>/manifest.json on offsite".
	Object string
	Err    error
}

func (e *SignatureError) Error() string { return e.Object + ": signature: " + e.Err.Error() }
func (e *SignatureError) Unwrap() error { return e.Err }

// envelope is the stored form of a format 2 manifest.
type envelope struct {
	FormatVersion int             `json:"format_version"`
	Manifest      json.RawMessage `json:"manifest"`
	Signature     *sign.Signature `json:"signature"`
}

// Sign returns the object to store for m: the envelope holding m's JSON
// and s's signature over exactly those bytes. m must be valid and of the
// current format version.
func (m *Manifest) Sign(s *sign.Signer) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("manifest %s: no signing key (set signing.key_file)", m.ID)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("manifest %s: format_version is %d; only format %d is signed", m.ID, m.FormatVersion, FormatVersion)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.signed(s)
}

// signed is Sign without the checks.
func (m *Manifest) signed(s *sign.Signer) ([]byte, error) {
	body, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return nil, err
	}
	return seal(body, s.Sign(body))
}

// seal builds the envelope around body by hand: encoding/json would
// re-indent a RawMessage, and the stored bytes must be the signed ones.
func seal(body []byte, sig sign.Signature) ([]byte, error) {
	sj, err := json.Marshal(sig)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"format_version\": %d,\n  \"manifest\": ", FormatVersion)
	b.Write(body)
	b.WriteString(",\n  \"signature\": ")
	b.Write(sj)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// Decode parses a stored manifest object, checks its signature as trust
// says and validates it. It refuses unknown format versions and anything
// malformed; it trusts nothing else. Format 1 manifests have no signature:
// they are accepted only with trust.SkipSignature.
func Decode(data []byte, trust Trust) (*Manifest, error) {
	return decode(data, trust, "manifest")
}

// decode is Decode; object names the manifest in signature errors and
// warnings.
func decode(data []byte, trust Trust, object string) (*Manifest, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d allowed", len(data), maxSize)
	}
	var probe struct {
		FormatVersion int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	var body []byte
	var sigErr error
	signedBy := ""
	switch probe.FormatVersion {
	case 1:
		body, sigErr = data, ErrUnsigned
	case 2:
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("manifest envelope: %w", err)
		}
		switch {
		case len(env.Manifest) == 0 || bytes.Equal(env.Manifest, []byte("null")):
			return nil, errors.New("manifest envelope: no manifest")
		case env.Signature == nil:
			sigErr = errors.New("missing")
		default:
			sigErr = trust.Verifier.Verify(env.Manifest, *env.Signature)
		}
		if sigErr == nil {
			signedBy = env.Signature.KeyID
		}
		body = env.Manifest
	default:
		return nil, fmt.Errorf("manifest format_version %d is not supported (this Coffer reads 1..%d; upgrade Coffer)", probe.FormatVersion, FormatVersion)
	}
	if sigErr != nil && !trust.SkipSignature {
		return nil, &SignatureError{Object: object, Err: sigErr}
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.FormatVersion != probe.FormatVersion {
		return nil, fmt.Errorf("manifest %s: format_version: is %d inside a format %d object", m.ID, m.FormatVersion, probe.FormatVersion)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if sigErr != nil && trust.Warn != nil {
		trust.Warn(object, sigErr)
	}
	m.SignedBy, m.stored = signedBy, bytes.Clone(data)
	return &m, nil
}
