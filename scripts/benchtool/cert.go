package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// mkcert writes a certificate for 127.0.0.1 from a fresh CA, valid for a
// day, as MinIO's --certs-dir expects it (dir/public.crt, dir/private.key
// mode 0600), and the CA to trust as dir/ca.crt.
func mkcert(dir string) error {
	caPEM, certPEM, keyPEM, err := testenv.NewCertificates("127.0.0.1")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"private.key", keyPEM, 0o600}, {"public.crt", certPEM, 0o644}, {"ca.crt", caPEM, 0o644}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "wrote a certificate for 127.0.0.1 and its CA to %s\n", dir)
	return nil
}
