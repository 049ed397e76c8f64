package seal

import (
	"bytes"
	"fmt"

	"github.com/coffer-backup/coffer/crypto/keyfile"
)

// maxPassphraseFile bounds what is read of a passphrase file.
const maxPassphraseFile = 64 << 10

// PassphraseFile returns a PassphraseFunc reading the passphrase from
// file, which must not be readable by group or others. Trailing newlines
// are dropped.
func PassphraseFile(file string) PassphraseFunc {
	return func() ([]byte, error) {
		if file == "" {
			return nil, fmt.Errorf("the identity file is passphrase-protected and no passphrase file is set")
		}
		data, err := keyfile.Read(file, maxPassphraseFile)
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(data, "\r\n"), nil
	}
}
