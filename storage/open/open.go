package open

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Store returns the Store for destination d: type "s3" gives an S3 store
// with the default part size and concurrency, type "local" a directory
// store. Secrets are revealed only to hand them to the backend.
func Store(ctx context.Context, d *config.Destination) (storage.Store, error) {
	return store(ctx, d, 0)
}

// store opens d; lockFor is the Object Lock retention given to uploads
// when d has object_lock set.
func store(ctx context.Context, d *config.Destination, lockFor time.Duration) (storage.Store, error) {
	if d == nil {
		return nil, errors.New("open store: nil destination")
	}
	switch d.Type {
	case "s3":
		var lockMode string
		if d.ObjectLock != nil && lockFor > 0 {
			lockMode = d.ObjectLock.Mode
		} else {
			lockFor = 0
		}
		s, err := s3.New(ctx, s3.Options{
			LockMode:        lockMode,
			LockFor:         lockFor,
			Endpoint:        d.Endpoint,
			Region:          d.Region,
			Bucket:          d.Bucket,
			Prefix:          d.Prefix,
			PathStyle:       d.PathStyle,
			AccessKeyID:     d.AccessKeyID,
			SecretAccessKey: d.SecretAccessKey.Reveal(),
			SessionToken:    d.SessionToken.Reveal(),
			CAFile:          d.CAFile,
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

// JobDestinations opens job's destinations in the job's order, moving from
// (if not empty) to the front. Uploads to a destination with object_lock
// are locked for the job's keep_within.
func JobDestinations(ctx context.Context, cfg *config.Config, job *config.Job, from ...string) ([]storage.Destination, error) {
	names := slices.Clone(job.Destinations)
	if len(from) > 0 && from[0] != "" {
		i := slices.Index(names, from[0])
		if i < 0 {
			return nil, fmt.Errorf("job %s has no destination %s (it has %v)", job.Name, from[0], job.Destinations)
		}
		names = append([]string{from[0]}, slices.Delete(names, i, i+1)...)
	}
	var out []storage.Destination
	for _, n := range names {
		d, err := JobDestination(ctx, cfg, job, n)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// JobDestination opens one of job's destinations, name, as
// JobDestinations does, without opening the others.
func JobDestination(ctx context.Context, cfg *config.Config, job *config.Job, name string) (storage.Destination, error) {
	if !slices.Contains(job.Destinations, name) {
		return storage.Destination{}, fmt.Errorf("job %s has no destination %s (it has %v)", job.Name, name, job.Destinations)
	}
	s, err := store(ctx, cfg.Destinations[name], job.Retention.KeepWithin.D())
	if err != nil {
		return storage.Destination{}, err
	}
	return storage.Destination{Name: name, Store: s}, nil
}

// WarnPlainHTTP logs a warning for each destination of jobs (of every
// destination in cfg when no job is given) whose endpoint is plain http://,
// as insecure_http allows. Commands call it as a backup or the daemon
// starts, so the choice stays visible in the logs.
func WarnPlainHTTP(log *zap.Logger, cfg *config.Config, jobs ...*config.Job) {
	names := cfg.DestinationOrder
	if len(jobs) > 0 {
		names = nil
		for _, j := range jobs {
			for _, n := range j.Destinations {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
	}
	for _, n := range names {
		if d := cfg.Destinations[n]; d != nil && plainHTTP(d) {
			log.Warn("destination "+n+" uses plain HTTP: credentials and data travel unencrypted",
				zap.String("destination", n), zap.String("endpoint", d.Endpoint))
		}
	}
}

// plainHTTP reports whether d is an s3 destination whose endpoint is
// http://, not https://.
func plainHTTP(d *config.Destination) bool {
	return d.Type == "s3" && strings.HasPrefix(strings.ToLower(d.Endpoint), "http://")
}
