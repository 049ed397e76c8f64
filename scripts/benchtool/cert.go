package main

import (
	"fmt"
	"os"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// mkcert writes a certificate for 127.0.0.1 from a fresh CA, valid for a
// day, as MinIO's --certs-dir expects it (dir/public.crt, dir/private.key
// mode 0600), and the CA to trust as dir/ca.crt.
func mkcert(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := testenv.WriteCertificates(dir, "127.0.0.1"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote a certificate for 127.0.0.1 and its CA to %s\n", dir)
	return nil
}
