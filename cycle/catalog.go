package cycle

import (
	"context"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// catalog reads job's verified catalog on dests through the runner's
// manifest cache, and reports what it holds that cannot be used.
func (r *Runner) catalog(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) *manifest.Catalog {
	c := manifest.ReadCatalog(ctx, job.Name, dests, Trust(cfg), r.Manifests)
	r.observe(log, c)
	return c
}

// observe logs every manifest key of c that is not used, and why.
func (r *Runner) observe(log *zap.Logger, c *manifest.Catalog) {
	for _, u := range c.Untrusted {
		log.Warn("manifest not trusted; not used", zap.String("destination", u.Destination), zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	for _, in := range c.Incomplete {
		log.Warn("backup incomplete on a destination; not counted there", zap.String("destination", in.Destination), zap.String("backup", in.ID), zap.String("reason", in.Reason))
	}
}
