package s3

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/storage"
)

// TestUploads: an unfinished multipart upload, as a killed process leaves
// it, is listed with its key relative to the store's prefix and its start
// time, filtered by prefix, and gone after AbortUpload.
func TestUploads(t *testing.T) {
	s := lockTestStore(t, BucketOptions{}, nil)
	ctx := t.Context()
	const key = "app/b1/payload.sqlite.zst.age"
	before := time.Now().Add(-2 * time.Second)
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(s.keyPrefix + key)})
	if err != nil {
		t.Fatal(err)
	}
	// Outside the store's prefix: never listed.
	if _, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String("other-tenant/" + key)}); err != nil {
		t.Fatal(err)
	}

	var got []storage.Upload
	for u, err := range s.Uploads(ctx, "app/") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u)
	}
	if len(got) != 1 || got[0].Key != key || got[0].ID != aws.ToString(out.UploadId) {
		t.Fatalf("Uploads(app/) = %+v, want one upload of %s with ID %s", got, key, aws.ToString(out.UploadId))
	}
	if i := got[0].Initiated; i.Before(before) || i.After(time.Now().Add(2*time.Second)) {
		t.Errorf("Initiated = %v, want about now", i)
	}
	for u, err := range s.Uploads(ctx, "other/") {
		t.Errorf("Uploads(other/) yielded %+v, %v", u, err)
	}

	if err := s.AbortUpload(ctx, got[0]); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.ListMultipartUploads(ctx); err != nil || len(keys) != 0 {
		t.Errorf("after AbortUpload: uploads %v (%v), want none", keys, err)
	}
	if err := s.AbortUpload(ctx, got[0]); err != nil {
		t.Errorf("aborting an upload already gone: %v", err)
	}
}
