// Package signtest gives tests manifest signing keys and the Trust that
// accepts them. (Package manifest's own tests cannot use it: it imports
// manifest.)
package signtest

import (
	"bytes"
	"crypto/ed25519"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/manifest"
)

// NewSigner returns a signer with a fresh random key.
func NewSigner() *sign.Signer {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	return mustSigner(priv)
}

// SeededSigner returns the signer whose Ed25519 seed is 32 bytes of seed:
// the same key on every run, for signed test vectors.
func SeededSigner(seed byte) *sign.Signer {
	return mustSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
}

// mustSigner wraps priv, which is always a well-formed key here.
func mustSigner(priv ed25519.PrivateKey) *sign.Signer {
	s, err := sign.NewSigner(priv)
	if err != nil {
		panic(err)
	}
	return s
}

// Trust returns a manifest.Trust that trusts exactly the keys of signers.
func Trust(signers ...*sign.Signer) manifest.Trust {
	keys := make([]sign.PublicKey, len(signers))
	for i, s := range signers {
		keys[i] = s.Public()
	}
	return manifest.Trust{Verifier: sign.NewVerifier(keys...)}
}
