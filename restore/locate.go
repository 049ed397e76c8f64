package restore

import "github.com/coffer-backup/coffer/manifest"

// ErrNoBackup is returned (wrapped) when a job has no verified, whole
// backup anywhere. It is manifest.ErrNoBackup: errors.Is works with either.
var ErrNoBackup = manifest.ErrNoBackup
