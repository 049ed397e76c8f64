// Package s3test gives integration tests outside storage/s3 a fresh bucket
// on one of the shared test MinIO servers.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Options returns store options for a new, randomly named bucket on srv.
func Options(srv testenv.S3Server) s3.Options {
	var b [6]byte
	rand.Read(b[:])
	return s3.Options{
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		Bucket:          "coffer-test-" + hex.EncodeToString(b[:]),
		PathStyle:       true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	}
}

// NewBucket creates a fresh bucket on the shared MinIO server which
// ("primary" or "offsite"), lets edit adjust the store options (prefix,
// part size...), and removes the bucket and everything in it at cleanup.
func NewBucket(t testing.TB, which string, edit ...func(*s3.Options)) *s3.Store {
	t.Helper()
	return NewBucketOn(t, testenv.S3(t, which), edit...)
}

// NewBucketOn is NewBucket on a given server (one from testenv.StartMinIO).
func NewBucketOn(t testing.TB, srv testenv.S3Server, edit ...func(*s3.Options)) *s3.Store {
	t.Helper()
	return newBucket(t, srv, s3.BucketOptions{}, edit...)
}

// NewBucketWith is NewBucket for a bucket created with Object Lock or
// versioning. Cleanup bypasses governance retention; use governance mode.
func NewBucketWith(t testing.TB, which string, bo s3.BucketOptions, edit ...func(*s3.Options)) *s3.Store {
	t.Helper()
	return newBucket(t, testenv.S3(t, which), bo, edit...)
}

func newBucket(t testing.TB, srv testenv.S3Server, bo s3.BucketOptions, edit ...func(*s3.Options)) *s3.Store {
	t.Helper()
	opts := Options(srv)
	for _, e := range edit {
		e(&opts)
	}
	s, err := s3.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucketWith(context.Background(), bo); err != nil {
		t.Fatalf("create bucket %s on %s: %v", opts.Bucket, srv.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.RemoveBucket(ctx); err != nil {
			t.Logf("cleanup of bucket %s (the server may have been stopped on purpose): %v", opts.Bucket, err)
		}
	})
	return s
}
