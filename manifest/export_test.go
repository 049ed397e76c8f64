package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/coffer-backup/coffer/crypto/sign"
)

// jsonOf encodes m without validating it, to build bad manifests.
func jsonOf(m *Manifest) ([]byte, error) { return json.Marshal(m) }

// testSigner is a fixed key (seed of 1s), so the signed test vectors in
// testdata stay valid; testTrust trusts it.
var testSigner = func() *sign.Signer {
	s, err := sign.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	return s
}()

var testTrust = Trust{Verifier: sign.NewVerifier(testSigner.Public())}

// signedOf wraps m, unvalidated, in an envelope signed by testSigner, to
// build manifests that are well signed but otherwise bad.
func signedOf(t testing.TB, m *Manifest) []byte {
	t.Helper()
	data, err := m.signed(testSigner)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
