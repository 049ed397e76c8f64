package open

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Store returns the Store for destination d: type "s3" gives an S3 store
// with the default part size and concurrency, type "local" a directory
// store. Secrets are revealed only to hand them to the backend.
func Store(ctx context.Context, d *config.Destination) (storage.Store, error) {
	if d == nil {
		return nil, errors.New("open store: nil destination")
	}
	switch d.Type {
	case "s3":
		s, err := s3.New(ctx, s3.Options{
			Endpoint:        d.Endpoint,
			Region:          d.Region,
			Bucket:          d.Bucket,
			Prefix:          d.Prefix,
			PathStyle:       d.PathStyle,
			AccessKeyID:     d.AccessKeyID,
			SecretAccessKey: d.SecretAccessKey.Reveal(),
			SessionToken:    d.SessionToken.Reveal(),
		})
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		return s, nil
	case "local":
		s, err := fs.New(d.Path)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("destination %s: unknown type %q (want s3 or local)", d.Name, d.Type)
	}
}
