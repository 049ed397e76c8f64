package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
)

// signingKey writes a new signing key file of the given mode into dir and
// returns its public key.
func signingKey(t *testing.T, dir, name string, mode os.FileMode) sign.PublicKey {
	t.Helper()
	data, pub, err := sign.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name, string(data), mode)
	return pub
}

const signingBase = `recipients: [` + testRecipient + `]
destinations:
  d: {type: local, path: /b}
jobs:
  app:
    source: {type: postgres, database: app}
`

// TestSigning: the key file's public key is trusted by default; listed
// public keys replace that default and must include it; a relative
// key_file is found next to the configuration; a restore host's
// configuration may name a key file it does not have when it lists the
// trusted keys.
func TestSigning(t *testing.T) {
	dir := t.TempDir()
	key := signingKey(t, dir, "signing.key", 0o600)
	old := signingKey(t, t.TempDir(), "old.key", 0o600)
	cfgPath := filepath.Join(dir, "coffer.yaml")

	parse := func(t *testing.T, signing string) *Config {
		t.Helper()
		c, err := Parse(cfgPath, []byte(signing+signingBase))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("key file only", func(t *testing.T) {
		c := parse(t, "signing: {key_file: signing.key}\n")
		if c.Signing.KeyFile != filepath.Join(dir, "signing.key") {
			t.Errorf("key_file = %q, want it next to the configuration", c.Signing.KeyFile)
		}
		if len(c.Signing.PublicKeys) != 1 || !c.Signing.PublicKeys[0].Equal(key) {
			t.Errorf("public_keys = %v, want the key file's %s", c.Signing.PublicKeys, key)
		}
		s, err := c.Signing.Signer()
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("x")
		if err := c.Signing.Verifier().Verify(data, s.Sign(data)); err != nil {
			t.Errorf("the configured key's signature is not trusted: %v", err)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		c := parse(t, "signing:\n  key_file: signing.key\n  public_keys: ["+old.String()+", "+key.String()+"]\n")
		if len(c.Signing.PublicKeys) != 2 || !c.Signing.PublicKeys[0].Equal(old) {
			t.Errorf("public_keys = %v", c.Signing.PublicKeys)
		}
	})
	t.Run("restore host", func(t *testing.T) {
		c := parse(t, "signing:\n  key_file: /nonexistent/signing.key\n  public_keys: ["+key.String()+"]\n")
		if _, err := c.Signing.Signer(); err == nil {
			t.Error("a missing key file loaded")
		}
		c = parse(t, "signing: {public_keys: ["+key.String()+"]}\n")
		if _, err := c.Signing.Signer(); err == nil || !strings.Contains(err.Error(), "signing.key_file is not set") {
			t.Errorf("Signer without key_file: %v", err)
		}
	})
	t.Run("absent", func(t *testing.T) {
		c := parse(t, "")
		if len(c.Signing.PublicKeys) != 0 || c.Signing.KeyFile != "" {
			t.Errorf("signing = %+v, want empty", c.Signing)
		}
	})
	t.Run("key file made readable after load", func(t *testing.T) {
		c := parse(t, "signing: {key_file: signing.key}\n")
		os.Chmod(filepath.Join(dir, "signing.key"), 0o644)
		defer os.Chmod(filepath.Join(dir, "signing.key"), 0o600)
		if _, err := c.Signing.Signer(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Signer of a world-readable key: %v", err)
		}
	})
}
