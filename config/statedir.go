package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// StateDir returns the directory holding Coffer's local state (the audit
// log): daemon.state_dir, else $STATE_DIRECTORY (set by systemd's
// StateDirectory=; the first of a colon-separated list), else
// /var/lib/coffer when running as root, else $XDG_STATE_HOME/coffer, else
// ~/.local/state/coffer.
func (cfg *Config) StateDir() (string, error) {
	if cfg.Daemon.StateDir != "" {
		return cfg.Daemon.StateDir, nil
	}
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return d, nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/coffer", nil
	}
	// The XDG spec says to ignore a relative $XDG_STATE_HOME.
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "coffer"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("no state directory: set daemon.state_dir, $STATE_DIRECTORY or $HOME")
	}
	return filepath.Join(home, ".local", "state", "coffer"), nil
}
