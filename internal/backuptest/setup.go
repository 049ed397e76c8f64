package backuptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/dbtest"
)

// Setup is a working Coffer installation in a temporary directory, with
// no service and no network: job "app" backs up an SQLite database to two
// local-directory destinations, primary and offsite, and drills from
// offsite.
type Setup struct {
	Dir        string // holds everything below
	Config     string // the configuration file
	Database   string // the SQLite database job app backs up
	Identity   string // the age identity file (mode 0600), also drill.identity_file
	SigningKey string // the manifest signing key file (mode 0600)
	Primary    string // destination primary's directory
	Offsite    string // destination offsite's directory
	State      string // daemon.state_dir
	Scratch    string // drill.target.dir

	Identities []age.Identity // the identity file's identities
	Signer     *sign.Signer   // the signing key
}

// NewSetup writes a Setup whose database is dbtest.SeedSQLite's with rows
// orders. job holds extra settings of job app, one per line, written
// under it (indented to fit).
func NewSetup(t testing.TB, rows int, job string) *Setup {
	t.Helper()
	dir := t.TempDir()
	s := &Setup{
		Dir:        dir,
		Config:     filepath.Join(dir, "coffer.yaml"),
		Database:   filepath.Join(dir, "app.db"),
		Identity:   filepath.Join(dir, "identity.txt"),
		SigningKey: filepath.Join(dir, "signing.key"),
		Primary:    filepath.Join(dir, "primary"),
		Offsite:    filepath.Join(dir, "offsite"),
		State:      filepath.Join(dir, "state"),
		Scratch:    filepath.Join(dir, "scratch"),
	}
	for _, d := range []string{s.Primary, s.Offsite, s.State, s.Scratch} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	idFile, recipient, err := seal.GenerateIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pub, err := sign.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{s.Identity: idFile, s.SigningKey: keyFile} {
		if err := keyfile.Create(path, data); err != nil {
			t.Fatal(err)
		}
	}
	if s.Identities, err = seal.LoadIdentities(s.Identity); err != nil {
		t.Fatal(err)
	}
	if s.Signer, err = sign.LoadSigner(s.SigningKey); err != nil {
		t.Fatal(err)
	}
	dbtest.SeedSQLite(t, s.Database, rows)

	var extra strings.Builder
	for line := range strings.Lines(job) {
		extra.WriteString("    " + line)
	}
	if extra.Len() > 0 && !strings.HasSuffix(extra.String(), "\n") {
		extra.WriteString("\n")
	}
	yaml := fmt.Sprintf(`recipients: [%s]
signing:
  key_file: %s
  public_keys: [%s]
destinations:
  primary: {type: local, path: %s}
  offsite: {type: local, path: %s}
jobs:
  app:
    source: {type: sqlite, path: %s}
    compression: {level: 1, threads: 1}
    drill:
      identity_file: %s
      target: {dir: %s}
%sdaemon:
  state_dir: %s
  listen: "off"
`, recipient, s.SigningKey, pub, s.Primary, s.Offsite, s.Database, s.Identity, s.Scratch, extra.String(), s.State)
	if err := os.WriteFile(s.Config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// Load loads and validates the setup's configuration file.
func (s *Setup) Load(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Load(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
