package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/internal/layout"
)

// Lock modes accepted in Options.LockMode.
const (
	LockGovernance = "governance"
	LockCompliance = "compliance"
)

// parseLockMode checks Options.LockMode and Options.LockFor together.
func parseLockMode(mode string, d time.Duration) (types.ObjectLockMode, error) {
	var m types.ObjectLockMode
	switch strings.ToLower(mode) {
	case "":
		if d != 0 {
			return "", fmt.Errorf("lock duration %s given without a lock mode", d)
		}
		return "", nil
	case LockGovernance:
		m = types.ObjectLockModeGovernance
	case LockCompliance:
		m = types.ObjectLockModeCompliance
	default:
		return "", fmt.Errorf("lock mode %q: want %q, %q or empty", mode, LockGovernance, LockCompliance)
	}
	if d <= 0 {
		return "", fmt.Errorf("lock mode %s needs a positive lock duration", mode)
	}
	return m, nil
}

// applyLock sets Object Lock retention on an upload of key (relative to the
// prefix) starting at now, when the store locks objects and key is not one
// of Coffer's own small objects that it replaces or deletes (leases,
// probes, drill evidence: layout.Mutable, everything under _coffer/ but
// the audit trail). Backups and the shipped audit trail are written once,
// so they are locked: nobody can delete or replace them before their
// retention date. S3 refuses uploads to lock-enabled buckets without an
// integrity checksum, so a locked upload also asks for CRC32 checksums,
// which the SDK computes for the PutObject or for every part.
func (s *Store) applyLock(in *putRequest, key string, now time.Time) {
	if s.lockMode == "" || layout.Mutable(key) {
		return
	}
	in.lockMode = s.lockMode
	in.retainUntil = aws.Time(now.Add(s.lockFor).UTC())
	in.checksum = types.ChecksumAlgorithmCrc32
}

// BucketOptions say how EnsureBucketWith creates a bucket.
type BucketOptions struct {
	// ObjectLock creates the bucket with Object Lock enabled (which implies
	// versioning). Object Lock can only be chosen when a bucket is created.
	ObjectLock bool
	// Versioning turns on versioning, on a new or an existing bucket.
	Versioning bool
}

// EnsureBucket creates the bucket if it does not exist yet.
func (s *Store) EnsureBucket(ctx context.Context) error {
	return s.EnsureBucketWith(ctx, BucketOptions{})
}

// EnsureBucketWith creates the bucket if it does not exist yet, with Object
// Lock and versioning as opts say. For an existing bucket it turns on
// versioning when asked, and returns an error when Object Lock is asked for
// but the bucket does not have it.
func (s *Store) EnsureBucketWith(ctx context.Context, opts BucketOptions) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	exists := err == nil
	if err != nil {
		if c := errorCode(err); c != "NotFound" && c != "NoSuchBucket" {
			return fmt.Errorf("check bucket of %s: %w", s, err)
		}
	}
	if !exists {
		in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
		if s.region != "" && s.region != DefaultRegion {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
				LocationConstraint: types.BucketLocationConstraint(s.region),
			}
		}
		if opts.ObjectLock {
			in.ObjectLockEnabledForBucket = aws.Bool(true)
		}
		_, err = s.client.CreateBucket(ctx, in)
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			exists = true // created concurrently: check it below
		} else if err != nil {
			return fmt.Errorf("create bucket of %s: %w", s, err)
		}
	}
	if exists && opts.ObjectLock {
		out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
		if err != nil && !isNoLockConfig(err) {
			return fmt.Errorf("check Object Lock of %s: %w", s, err)
		}
		if err != nil || out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
			return fmt.Errorf("bucket of %s exists without Object Lock; create a new bucket with Object Lock enabled", s)
		}
	}
	if opts.Versioning && !opts.ObjectLock {
		_, err := s.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(s.bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			return fmt.Errorf("enable versioning on %s: %w", s, err)
		}
	}
	return nil
}

// RetainUntil returns the date until which Object Lock retention protects
// the current version of key, whether or not that date has passed; zero
// when the object has no retention (or the bucket no Object Lock). Legal
// holds are not reported. A missing key is storage.ErrNotExist.
func (s *Store) RetainUntil(ctx context.Context, key string) (time.Time, error) {
	if err := validateKey(key); err != nil {
		return time.Time{}, fmt.Errorf("retention of %s in %s: %w", key, s, err)
	}
	t, err := s.retainUntil(ctx, s.keyPrefix+key, "")
	if err != nil {
		return time.Time{}, fmt.Errorf("retention of %s in %s: %w", key, s, mapNotFound(err))
	}
	return t, nil
}

// retainUntil reads the retention of one version (or the current one when
// versionID is empty) of the object under the full key.
func (s *Store) retainUntil(ctx context.Context, full, versionID string) (time.Time, error) {
	in := &s3.GetObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(full)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := s.client.GetObjectRetention(ctx, in)
	if err != nil {
		if isNoLockConfig(err) {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	if out.Retention == nil {
		return time.Time{}, nil
	}
	return aws.ToTime(out.Retention.RetainUntilDate), nil
}

// isNoLockConfig reports whether err says there is no retention to read:
// the object has none, or the bucket has no Object Lock.
func isNoLockConfig(err error) bool {
	switch errorCode(err) {
	case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError":
		return true
	case "InvalidRequest":
		// MinIO and S3 on a bucket without Object Lock: "Bucket is
		// missing Object Lock Configuration".
		return strings.Contains(strings.ToLower(errorMessage(err)), "object lock configuration") ||
			strings.Contains(strings.ToLower(errorMessage(err)), "objectlockconfiguration")
	}
	return false
}

// lockRefusal reports whether a delete was refused in a way that may be
// Object Lock: S3 answers AccessDenied, MinIO InvalidRequest ("Object is
// WORM protected").
func lockRefusal(err error) bool {
	switch errorCode(err) {
	case "AccessDenied", "InvalidRequest", "ObjectLocked":
		return true
	}
	return false
}

// mentionsLock reports whether an error message names Object Lock.
func mentionsLock(err error) bool {
	m := strings.ToLower(errorMessage(err))
	for _, w := range []string{"worm", "object lock", "objectlock", "retention", "legal hold"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}
