package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// TestUploadsAreLeftoverTempFiles: temporary files a crash left behind are
// listed (with their mtime, filtered by prefix) and removed by AbortUpload,
// which refuses to remove a real object.
func TestUploadsAreLeftoverTempFiles(t *testing.T) {
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Put(ctx, "app/b1/payload", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(s.Root(), "app", "b2", ".coffer-tmp-42")
	if err := os.MkdirAll(filepath.Dir(leftover), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leftover, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(leftover, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	var got []storage.Upload
	for u, err := range s.Uploads(ctx, "app/") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u)
	}
	if len(got) != 1 || got[0].Key != "app/b2/.coffer-tmp-42" || !got[0].Initiated.Equal(mtime) {
		t.Fatalf("Uploads(app/) = %+v, want the one leftover with mtime %v", got, mtime)
	}
	for u, err := range s.Uploads(ctx, "app/b1/") {
		t.Errorf("Uploads(app/b1/) yielded %+v, %v", u, err)
	}

	if err := s.AbortUpload(ctx, storage.Upload{Key: "app/b1/payload"}); err == nil {
		t.Error("AbortUpload accepted an object's key")
	}
	if _, err := s.Stat(ctx, "app/b1/payload"); err != nil {
		t.Errorf("object damaged by AbortUpload: %v", err)
	}
	if err := s.AbortUpload(ctx, got[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(leftover)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover's directory not removed once empty: %v", err)
	}
	if err := s.AbortUpload(ctx, got[0]); err != nil {
		t.Errorf("aborting a leftover already gone: %v", err)
	}
}
