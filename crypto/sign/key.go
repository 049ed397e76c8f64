package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/crypto/keyfile"
)

// PublicKeyPrefix starts the text form of a public key:
// "coffer-sign1:" and the standard base64 of the 32-byte Ed25519 key.
const PublicKeyPrefix = "coffer-sign1:"

// pemType is the PEM block type of a private key file (PKCS#8, as
// openssl and Go's crypto/x509 write it).
const pemType = "PRIVATE KEY"

// maxKeyFile bounds how much of a private key file is read.
const maxKeyFile = 64 << 10

// PublicKey is an Ed25519 public key that signatures are checked with.
// The zero PublicKey is not a key.
type PublicKey struct {
	key ed25519.PublicKey
}

// ParsePublicKey reads the text form of a public key
// ("coffer-sign1:<base64>"). Its errors never repeat s, which may be a
// private key pasted in the wrong place.
func ParsePublicKey(s string) (PublicKey, error) {
	s = strings.TrimSpace(s)
	upper := strings.ToUpper(s)
	switch {
	case strings.Contains(upper, "PRIVATE KEY") || strings.Contains(upper, "AGE-SECRET-KEY-"):
		return PublicKey{}, errors.New("this is a private key; put its public key (coffer-sign1:..., printed by coffer keygen --signing-key) here")
	case strings.HasPrefix(s, "age1"):
		return PublicKey{}, fmt.Errorf("this is an age recipient (an encryption key); a signing public key looks like %s<base64>", PublicKeyPrefix)
	case !strings.HasPrefix(s, PublicKeyPrefix):
		return PublicKey{}, fmt.Errorf("not a Coffer signing public key: want %s<base64 of 32 bytes>, printed by coffer keygen --signing-key", PublicKeyPrefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s[len(PublicKeyPrefix):])
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("malformed signing public key: want %s and the base64 of %d bytes", PublicKeyPrefix, ed25519.PublicKeySize)
	}
	return PublicKey{key: ed25519.PublicKey(raw)}, nil
}

// String returns the text form, "coffer-sign1:<base64>"; "" for the zero
// PublicKey.
func (k PublicKey) String() string {
	if k.key == nil {
		return ""
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.key)
}

// ID is a short name for the key in messages and signatures: the first 4
// bytes of the SHA-256 of the key, in hex (8 characters). Two keys may
// share an ID; it identifies, it does not authenticate.
func (k PublicKey) ID() string {
	if k.key == nil {
		return ""
	}
	sum := sha256.Sum256(k.key)
	return hex.EncodeToString(sum[:4])
}

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool { return k.key != nil && k.key.Equal(o.key) }

// MarshalText encodes the key in its text form (for JSON and YAML).
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses the text form.
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// Signer signs with one Ed25519 private key.
type Signer struct {
	priv ed25519.PrivateKey
	pub  PublicKey
}

// NewSigner returns a Signer for priv (e.g. from ed25519.NewKeyFromSeed in
// tests).
func NewSigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	return &Signer{priv: priv, pub: PublicKey{key: priv.Public().(ed25519.PublicKey)}}, nil
}

// Public returns the public key that checks this Signer's signatures.
func (s *Signer) Public() PublicKey { return s.pub }

// GenerateKey creates a new signing key. It returns the key file's
// contents (comment lines naming the public key, then a PEM "PRIVATE KEY"
// block holding the PKCS#8 Ed25519 key, which openssl also reads) and the
// public key. Write the file with keyfile.Create.
func GenerateKey(now time.Time) (file []byte, pub PublicKey, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, PublicKey{}, err
	}
	s, err := NewSigner(priv)
	if err != nil {
		return nil, PublicKey{}, err
	}
	file, err = s.marshal(now)
	return file, s.pub, err
}

// marshal returns the key file for s.
func (s *Signer) marshal(now time.Time) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.priv)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Coffer manifest signing key (Ed25519). Secret: keep it on backup hosts only, mode 0600.\n")
	fmt.Fprintf(&b, "# created: %s\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", s.pub)
	if err := pem.Encode(&b, &pem.Block{Type: pemType, Bytes: der}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// LoadSigner reads a private key file written by GenerateKey (or any PEM
// PKCS#8 Ed25519 key, such as `openssl genpkey -algorithm ed25519`). A
// file that group or others may access is refused, with the command that
// fixes it.
func LoadSigner(path string) (*Signer, error) {
	if path == "" {
		return nil, errors.New("no signing key file given")
	}
	data, err := keyfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	s, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return s, nil
}

// parseKeyFile finds the first PEM block of data and reads it as a PKCS#8
// Ed25519 private key. Errors do not quote the file.
func parseKeyFile(data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("not a signing key file: no PEM block (create one with coffer keygen --signing-key FILE)")
	case block.Type != pemType:
		return nil, fmt.Errorf("not a signing key file: PEM block %q, want %q (an Ed25519 key from coffer keygen --signing-key)", block.Type, pemType)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a signing key file: the PRIVATE KEY block does not parse as PKCS#8")
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %T, want an Ed25519 key", key)
	}
	return NewSigner(priv)
}
