package s3

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/storage"
)

// versionsOf lists the versions and delete markers of every key starting
// with prefix (relative to the store's prefix), as "key" per entry.
func versionsOf(t *testing.T, s *Store, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.keyPrefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range listedVersions(page) {
			keys = append(keys, strings.TrimPrefix(v.key, s.keyPrefix))
		}
	}
	return keys
}

// TestDisposeVersioned: every version and delete marker of exactly the key
// goes, and nothing of a key that merely shares its prefix.
func TestDisposeVersioned(t *testing.T) {
	s := lockTestStore(t, BucketOptions{Versioning: true}, nil)
	ctx := t.Context()
	const key, sibling = "app/b1/payload.sqlite.zst.age", "app/b1/payload.sqlite.zst.age.old"
	for _, v := range []string{"one", "two", "three"} {
		if _, err := s.Put(ctx, key, strings.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, sibling, strings.NewReader("keep me")); err != nil {
		t.Fatal(err)
	}
	if n := len(versionsOf(t, s, key)); n != 4 {
		t.Fatalf("setup: %d versions under %s, want 3 + 1 sibling", n, key)
	}

	n, err := s.Dispose(ctx, key)
	if err != nil || n != 3 {
		t.Fatalf("Dispose = %d, %v; want 3, nil", n, err)
	}
	if left := versionsOf(t, s, key); len(left) != 1 || left[0] != sibling {
		t.Errorf("versions left under %s: %v, want only the sibling", key, left)
	}
	if _, err := s.Stat(ctx, sibling); err != nil {
		t.Errorf("sibling key damaged: %v", err)
	}

	// A deleted object (current version a delete marker) still has its data
	// in older versions: Dispose removes those and the marker.
	const gone = "app/b2/payload.sqlite.zst.age"
	if _, err := s.Put(ctx, gone, strings.NewReader("secret")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Dispose(ctx, gone); err != nil || n != 2 {
		t.Fatalf("Dispose of a deleted key = %d, %v; want 2 (version and delete marker), nil", n, err)
	}
	if left := versionsOf(t, s, gone); len(left) != 0 {
		t.Errorf("left after Dispose of a deleted key: %v", left)
	}
}

// TestDisposeUnversioned: on a plain bucket Dispose removes the object (its
// "null" version); a missing key removes nothing and is no error.
func TestDisposeUnversioned(t *testing.T) {
	s := lockTestStore(t, BucketOptions{}, nil)
	ctx := t.Context()
	if _, err := s.Put(ctx, "app/b1/payload.sqlite.zst.age", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Dispose(ctx, "app/b1/payload.sqlite.zst.age"); err != nil || n != 1 {
		t.Fatalf("Dispose = %d, %v; want 1, nil", n, err)
	}
	if _, err := s.Stat(ctx, "app/b1/payload.sqlite.zst.age"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("object still there after Dispose: %v", err)
	}
	if left := versionsOf(t, s, "app/"); len(left) != 0 {
		t.Errorf("left after Dispose: %v", left)
	}
	if n, err := s.Dispose(ctx, "app/b1/payload.sqlite.zst.age"); err != nil || n != 0 {
		t.Errorf("Dispose of a missing key = %d, %v; want 0, nil", n, err)
	}
}
