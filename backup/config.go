package backup

import (
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/storage"
)

// ConfiguredJob is the Job that backs up the configured job j of cfg to
// dests (j's destinations, opened), with manifests signed by signer,
// recording version as the Coffer version that wrote them, and earlier
// manifests read with the configured trust (manifest.ConfiguredTrust). Its
// error is snapshot.NewSource's, for a source that cannot be built.
func ConfiguredJob(cfg *config.Config, j *config.Job, signer *sign.Signer, dests []storage.Destination, version string) (Job, error) {
	src, err := snapshot.NewSource(j.Source)
	if err != nil {
		return Job{}, err
	}
	return Job{
		Name:             j.Name,
		Source:           src,
		Destinations:     dests,
		Recipients:       j.Recipients,
		Level:            j.Compression.Level,
		Threads:          j.Compression.Threads,
		StallTimeout:     j.StallTimeout.D(),
		Signer:           signer,
		Trust:            manifest.ConfiguredTrust(cfg.Signing),
		MaxShrinkPercent: j.MaxShrinkPercent,
		Version:          version,
	}, nil
}
