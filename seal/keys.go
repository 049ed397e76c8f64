package seal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"filippo.io/age"
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
	if err := CheckPrivate(path); err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
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
