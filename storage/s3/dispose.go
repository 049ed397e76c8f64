package s3

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/storage"
)

// objectVersion is one listed version or delete marker, under its full key.
type objectVersion struct {
	key, id string
}

// listedVersions returns the versions and then the delete markers of a
// ListObjectVersions page, each in the server's order (newest first per key).
func listedVersions(page *s3.ListObjectVersionsOutput) []objectVersion {
	out := make([]objectVersion, 0, len(page.Versions)+len(page.DeleteMarkers))
	for _, v := range page.Versions {
		out = append(out, objectVersion{aws.ToString(v.Key), aws.ToString(v.VersionId)})
	}
	for _, m := range page.DeleteMarkers {
		out = append(out, objectVersion{aws.ToString(m.Key), aws.ToString(m.VersionId)})
	}
	return out
}

// Dispose removes every version and delete marker of exactly key, so that
// nothing of the object can be recovered from the bucket, and returns how
// many it removed. It works on unversioned buckets too (one "null" version).
//
// Versions go oldest first and delete markers last, and Dispose stops at
// the first version it cannot delete: what the key shows (the newest
// version, or a delete marker hiding the object) never changes unless
// every version is gone. A version protected by Object Lock (retention or
// legal hold) gives an error wrapping storage.ErrLocked that names the
// retain-until date when it can be read. Dispose never bypasses governance
// retention.
func (s *Store) Dispose(ctx context.Context, key string) (int, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("dispose of %s in %s: %w", key, s, err)
	}
	full := s.keyPrefix + key
	var versions, markers []objectVersion
	p := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(full),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if errorCode(err) == "NotImplemented" {
				// A server without versions: a plain delete is all there is.
				if err := s.Delete(ctx, key); err != nil {
					return 0, err
				}
				return 1, nil
			}
			return 0, fmt.Errorf("dispose of %s in %s: list versions: %w", key, s, err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) == full {
				versions = append(versions, objectVersion{full, aws.ToString(v.VersionId)})
			}
		}
		for _, m := range page.DeleteMarkers {
			if aws.ToString(m.Key) == full {
				markers = append(markers, objectVersion{full, aws.ToString(m.VersionId)})
			}
		}
	}
	removed := 0
	for i := len(versions) - 1; i >= 0; i-- {
		if err := s.deleteVersion(ctx, versions[i], false); err != nil {
			return removed, fmt.Errorf("dispose of %s in %s: %w", key, s, s.lockedError(ctx, versions[i], err))
		}
		removed++
	}
	for _, m := range markers {
		if err := s.deleteVersion(ctx, m, false); err != nil {
			return removed, fmt.Errorf("dispose of %s in %s: delete marker: %w", key, s, err)
		}
		removed++
	}
	return removed, nil
}

// deleteVersion deletes one version or delete marker; bypass overrides
// governance-mode retention. A version already gone is not an error.
func (s *Store) deleteVersion(ctx context.Context, v objectVersion, bypass bool) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(v.key)}
	if v.id != "" {
		in.VersionId = aws.String(v.id)
	}
	if bypass {
		in.BypassGovernanceRetention = aws.Bool(true)
	}
	_, err := s.client.DeleteObject(ctx, in)
	if err != nil && isNotFound(err) {
		return nil // gone already
	}
	return err
}

// lockedError turns a refused delete of version v into storage.ErrLocked
// when Object Lock is the reason, naming the retain-until date or the legal
// hold; any other error is returned unchanged.
func (s *Store) lockedError(ctx context.Context, v objectVersion, err error) error {
	if !lockRefusal(err) {
		return err
	}
	if until, rerr := s.retainUntil(ctx, v.key, v.id); rerr == nil && until.After(time.Now()) {
		return fmt.Errorf("%w: version %s retained until %s", storage.ErrLocked, v.id, until.UTC().Format(time.RFC3339))
	}
	in := &s3.GetObjectLegalHoldInput{Bucket: aws.String(s.bucket), Key: aws.String(v.key)}
	if v.id != "" {
		in.VersionId = aws.String(v.id)
	}
	if out, herr := s.client.GetObjectLegalHold(ctx, in); herr == nil && out.LegalHold != nil && out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn {
		return fmt.Errorf("%w: version %s under legal hold", storage.ErrLocked, v.id)
	}
	if mentionsLock(err) {
		return fmt.Errorf("%w: version %s: %s", storage.ErrLocked, v.id, errorMessage(err))
	}
	return err
}

// VersionKeys lists every key under prefix (relative to the store prefix)
// that has any version or delete marker, once each, in key order. It
// implements storage.VersionKeyLister. A server without versioning lists
// what List does.
func (s *Store) VersionKeys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		p := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.keyPrefix + prefix),
		})
		last := ""
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				if errorCode(err) == "NotImplemented" {
					for obj, err := range s.List(ctx, prefix) {
						if !yield(obj.Key, err) || err != nil {
							return
						}
					}
					return
				}
				yield("", fmt.Errorf("list versions under %s in %s: %w", prefix, s, err))
				return
			}
			var keys []string
			for _, v := range listedVersions(page) {
				keys = append(keys, strings.TrimPrefix(v.key, s.keyPrefix))
			}
			slices.Sort(keys)
			for _, k := range slices.Compact(keys) {
				if k == last {
					continue
				}
				last = k
				if !yield(k, nil) {
					return
				}
			}
		}
	}
}
