package s3

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

var _ storage.Clock = (*Store)(nil)

// Now returns the server's time: the Date header of a one-key listing
// (ListObjectsV2, which prune needs the permission for anyway) of
// layout.ClockPrefix, under which nothing is stored, one-second
// resolution. It writes nothing, so it works on buckets whose default
// Object Lock retention would keep any object written to measure the time.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.keyPrefix + layout.ClockPrefix),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read the time of %s: %w", s, err)
	}
	t, ok := awsmiddleware.GetServerTime(out.ResultMetadata)
	if !ok || t.IsZero() {
		return time.Time{}, fmt.Errorf("read the time of %s: the server's answer has no valid Date header", s)
	}
	return t, nil
}
