package s3

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/storage"
)

// Uploads yields the unfinished multipart uploads whose key starts with
// prefix, across all pages. Keys are relative to the store's prefix;
// Initiated is when the upload was started, as the server reports it.
//
// MinIO lists only the uploads it started since it last restarted (older
// ones it expires itself, after 24 hours by default).
func (s *Store) Uploads(ctx context.Context, prefix string) iter.Seq2[storage.Upload, error] {
	return func(yield func(storage.Upload, error) bool) {
		if strings.HasPrefix(prefix, "/") {
			yield(storage.Upload{}, fmt.Errorf("list uploads %s in %s: invalid prefix: starts with /", prefix, s))
			return
		}
		for u, err := range s.uploads(ctx, s.keyPrefix+prefix) {
			if err != nil {
				yield(storage.Upload{}, fmt.Errorf("list uploads %s in %s: %w", prefix, s, err))
				return
			}
			u.Key = strings.TrimPrefix(u.Key, s.keyPrefix)
			if !yield(u, nil) {
				return
			}
		}
	}
}

// uploads yields the uploads under a full (bucket-level) prefix, with full
// keys. It lists the whole bucket and filters here: given a prefix, MinIO
// lists only the uploads of the object named exactly that.
func (s *Store) uploads(ctx context.Context, fullPrefix string) iter.Seq2[storage.Upload, error] {
	return func(yield func(storage.Upload, error) bool) {
		p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{
			Bucket: aws.String(s.bucket),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(storage.Upload{}, err)
				return
			}
			for _, u := range page.Uploads {
				if !strings.HasPrefix(aws.ToString(u.Key), fullPrefix) {
					continue
				}
				up := storage.Upload{
					Key:       aws.ToString(u.Key),
					ID:        aws.ToString(u.UploadId),
					Initiated: aws.ToTime(u.Initiated),
				}
				if !yield(up, nil) {
					return
				}
			}
		}
	}
}

// AbortUpload discards the unfinished upload u (as Uploads yielded it) and
// its parts. An upload that is already gone is not an error.
func (s *Store) AbortUpload(ctx context.Context, u storage.Upload) error {
	if err := validateKey(u.Key); err != nil {
		return fmt.Errorf("abort upload of %s in %s: %w", u.Key, s, err)
	}
	if u.ID == "" {
		return fmt.Errorf("abort upload of %s in %s: no upload ID", u.Key, s)
	}
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(s.keyPrefix + u.Key),
		UploadId: aws.String(u.ID),
	})
	if err != nil && errorCode(err) != "NoSuchUpload" {
		return fmt.Errorf("abort upload of %s in %s: %w", u.Key, s, err)
	}
	return nil
}
