package config

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/coffer-backup/coffer/crypto/sign"
)

// Signing says how manifests are signed and which signatures are trusted.
type Signing struct {
	// KeyFile is the Ed25519 private key (coffer keygen --signing-key) that
	// backups sign their manifests with. Needed where backups are made
	// (coffer backup, coffer run); restore hosts need only PublicKeys.
	// Absolute: a relative key_file is resolved against the configuration
	// file's directory at load. The file must be mode 0600.
	KeyFile string `json:"key_file,omitempty"`
	// PublicKeys are the keys whose signatures readers trust. Default:
	// the public key of KeyFile. When set, they must include it.
	PublicKeys []sign.PublicKey `json:"public_keys"`

	// keys are the public_keys as written, parsed by checkSigning.
	keys []string
}

// Signer loads KeyFile, checking again that it is private. It fails when
// no key_file is set.
func (s Signing) Signer() (*sign.Signer, error) {
	if s.KeyFile == "" {
		return nil, errors.New("signing.key_file is not set: backups must be signed; create a key with `coffer keygen --signing-key FILE` and set signing.key_file")
	}
	return sign.LoadSigner(s.KeyFile)
}

// Verifier returns a verifier trusting PublicKeys.
func (s Signing) Verifier() *sign.Verifier { return sign.NewVerifier(s.PublicKeys...) }

// signing decodes the signing section. Public keys are parsed by
// checkSigning, which can say what a wrong value is.
func (p *parser) signing(s *Signing, n *yaml.Node, path string) {
	p.object(n, path, "a mapping with key_file and public_keys", []field{
		{"key_file", p.fileName(&s.KeyFile)},
		{"public_keys", p.strings(&s.keys)},
	})
}

// checkSigning parses the public keys, checks the key file (private,
// parseable, trusted) and makes its public key the default trusted one.
// A key file that does not exist is an error only when it would be the
// only trusted key: a configuration copied to a restore host without the
// private key still reads backups.
func (p *parser) checkSigning(s *Signing) {
	keys := s.keys
	for i, text := range keys {
		ip := fmt.Sprintf("signing.public_keys[%d]", i)
		if p.isBad(ip) {
			continue
		}
		k, err := sign.ParsePublicKey(text)
		if err != nil {
			p.errorf(ip, "%v", err)
			continue
		}
		if slices.ContainsFunc(s.PublicKeys, k.Equal) {
			p.errorf(ip, "key %s is listed twice", k.ID())
			continue
		}
		s.PublicKeys = append(s.PublicKeys, k)
	}
	if s.KeyFile == "" || p.isBad("signing.key_file") {
		return
	}
	signer, err := sign.LoadSigner(s.KeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(keys) > 0:
		return // checked again by the commands that sign
	case errors.Is(err, fs.ErrNotExist):
		p.errorf("signing.key_file", "%s does not exist; create it with `coffer keygen --signing-key %s` (on a host that only restores, leave key_file out and list the backup host's key under public_keys)", s.KeyFile, s.KeyFile)
		return
	case err != nil:
		p.errorf("signing.key_file", "%v", err)
		return
	}
	pub := signer.Public()
	switch {
	case len(keys) == 0:
		s.PublicKeys = []sign.PublicKey{pub}
	case !slices.ContainsFunc(s.PublicKeys, pub.Equal) && len(s.PublicKeys) == len(keys):
		p.errorf("signing.key_file", "its public key %s (id %s) is not among signing.public_keys: the backups it signs would be refused; add it", pub, pub.ID())
	}
}
