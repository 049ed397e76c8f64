package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
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

// WriteSecretFile creates path with mode 0600 and writes data to it. It
// refuses to overwrite an existing file.
func WriteSecretFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite a key file", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// CheckPrivate returns an error when path is readable or writable by group
// or others, with the command that fixes it.
func CheckPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o and is accessible to other users; fix with: chmod 600 %s", path, perm, path)
	}
	return nil
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
	data, err := ReadPrivateFile(path, maxIdentityFile)
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

// ReadPrivateFile reads a key file: it refuses one that group or others
// may access (see CheckPrivate) or that is larger than max bytes.
func ReadPrivateFile(path string, max int64) ([]byte, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key or passphrase file", path, max)
	}
	return data, nil
}
