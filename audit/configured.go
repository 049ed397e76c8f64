package audit

import (
	"fmt"

	"github.com/coffer-backup/coffer/config"
)

// OpenConfigured opens the audit log in cfg's state directory, with the
// manifest signing key (see SetSigning) for the chain heads it ships.
func OpenConfigured(cfg *config.Config) (*Log, error) {
	dir, err := cfg.StateDir()
	if err != nil {
		return nil, err
	}
	l, err := Open(dir)
	if err != nil {
		return nil, fmt.Errorf("audit trail: %w (set daemon.state_dir to a writable directory)", err)
	}
	if err := l.SetSigning(cfg.Signing); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// SetSigning gives l the manifest signing key (signing.key_file), so the
// chain heads it ships are signed. Without a key_file the heads ship
// unsigned, and coffer audit verify reports them.
func (l *Log) SetSigning(s config.Signing) error {
	if s.KeyFile == "" {
		return nil
	}
	signer, err := s.Signer()
	if err != nil {
		return fmt.Errorf("audit trail: the key that signs shipped audit heads: %w", err)
	}
	l.SetSigner(signer)
	return nil
}
