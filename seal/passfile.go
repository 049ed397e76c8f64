package seal

import (
	"bytes"
	"fmt"
	"os"
)

// PassphraseFile returns a PassphraseFunc reading the passphrase from
// file, which must not be readable by group or others. Trailing newlines
// are dropped.
func PassphraseFile(file string) PassphraseFunc {
	return func() ([]byte, error) {
		if file == "" {
			return nil, fmt.Errorf("the identity file is passphrase-protected and no passphrase file is set")
		}
		if err := CheckPrivate(file); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(data, "\r\n"), nil
	}
}
