// Package keyfile reads and writes the private files Coffer's keys live in:
// age identities, Ed25519 signing keys, passphrase files and drill
// evidence copies. It is the one place that decides what "private" means.
//
// Guarantees:
//   - Create makes a file with mode 0600, never overwrites one, and removes
//     a file it could not write whole.
//   - Read refuses a file that group or others may read or write, with the
//     chmod that fixes it, and a file larger than the caller's bound.
//   - Errors name the file, never its contents.
package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Create creates path with mode 0600 and writes data to it. It refuses to
// overwrite an existing file.
func Create(path string, data []byte) error {
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

// Read reads a private file: it refuses one that group or others may
// access (see CheckPrivate) or that is larger than max bytes.
func Read(path string, max int64) ([]byte, error) {
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
