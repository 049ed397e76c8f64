package seal

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/coffer-backup/coffer/crypto/keyfile"
)

// GenerateIdentity creates a new X25519 age identity. It returns the
// identity file contents (in age-keygen's format) and the public key.
func GenerateIdentity(now time.Time) (file []byte, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", err
	}
	recipient = id.Recipient().String()
	file = fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n", now.UTC().Format(time.RFC3339), recipient, id.String())
	return file, recipient, nil
}

// LoadIdentities reads age identities from a key file (age-keygen format,
// comments allowed). The file must not be accessible to group or others.
func LoadIdentities(path string) ([]age.Identity, error) {
	return LoadIdentitiesWith(path, nil)
}

// PassphraseFunc returns the passphrase of a passphrase-protected identity
// file; it is called only for such files.
type PassphraseFunc func() ([]byte, error)

// maxIdentityFile bounds how much of an identity file is read.
const maxIdentityFile = 1 << 20

// LoadIdentitiesWith is LoadIdentities for files that may be protected
// by a passphrase (an identity file encrypted with `age -p`, binary or
// armored): passphrase is asked for it. A nil passphrase refuses such a
// file with an error saying how to give one.
func LoadIdentitiesWith(path string, passphrase PassphraseFunc) ([]age.Identity, error) {
	data, err := keyfile.Read(path, maxIdentityFile)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	if encrypted, armored := isAgeFile(data); encrypted {
		if passphrase == nil {
			return nil, fmt.Errorf("identity file %s is protected by a passphrase: give --passphrase-file FILE (mode 0600) or run on a terminal", path)
		}
		pass, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("identity file %s: passphrase: %w", path, err)
		}
		scrypt, err := age.NewScryptIdentity(string(pass))
		if err != nil {
			return nil, fmt.Errorf("identity file %s: passphrase: %w", path, err)
		}
		var src io.Reader = bytes.NewReader(data)
		if armored {
			src = armor.NewReader(src)
		}
		r, err := age.Decrypt(src, scrypt)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: wrong passphrase, or the file is damaged", path)
		}
		if data, err = io.ReadAll(io.LimitReader(r, maxIdentityFile)); err != nil {
			return nil, fmt.Errorf("identity file %s: damaged: %w", path, err)
		}
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's parse errors may quote the offending line: do not pass
		// them on, the line may be a secret key.
		return nil, fmt.Errorf("identity file %s: not an age identity file", path)
	}
	return ids, nil
}

// Recipients returns the public keys of X25519 identities, e.g. to tell a
// user which keys an identity file holds.
func Recipients(ids []age.Identity) []string {
	var out []string
	for _, id := range ids {
		switch x := id.(type) {
		case *age.X25519Identity:
			out = append(out, x.Recipient().String())
		case *age.HybridIdentity:
			out = append(out, x.Recipient().String())
		}
	}
	return out
}

// isAgeFile reports whether data is an age-encrypted file, and whether it
// is ASCII-armored.
func isAgeFile(data []byte) (encrypted, armored bool) {
	switch {
	case bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")):
		return true, false
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)):
		return true, true
	}
	return false, false
}
