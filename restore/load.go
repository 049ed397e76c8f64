package restore

import (
	"context"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/storage"
)

// Load streams the backup m describes from d into a prepared loader,
// checking it on the way exactly as Run does (age header, authentication,
// zstd framing, size and SHA-256), without falling back to another
// destination. It returns how many plaintext bytes reached the loader.
// Drills use it: their point is the one destination they were told to use.
func Load(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity, loader snapshot.Loader) (int64, error) {
	return restoreFrom(ctx, d, m, ids, loader)
}
