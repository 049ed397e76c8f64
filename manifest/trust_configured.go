package manifest

import "github.com/coffer-backup/coffer/config"

// ConfiguredTrust is how the daemon, and every command that writes, treats
// manifest signatures: it trusts the configured public keys and never
// skips a failing signature. A backup whose manifest fails is not a prior
// backup, not a repair source and not a copy prune counts.
func ConfiguredTrust(s config.Signing) Trust {
	return Trust{Verifier: s.Verifier()}
}
