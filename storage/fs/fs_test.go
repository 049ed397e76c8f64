package fs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := fs.New(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { checkNoTemps(t, s.Root()) })
		return s
	})
}

// checkNoTemps fails if a temporary file survived, and checks permissions.
func checkNoTemps(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".coffer-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestValidateKey(t *testing.T) {
	good := []string{"a", "a/b", "job/20261123T020000.000Z-7f3a/payload.dump.zst.age", ".hidden", "a..b", "_coffer/lease/x"}
	for _, k := range good {
		if err := fs.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	bad := []string{"", "/abs", "a//b", "a/", "..", "a/../b", "./a", "a/.", "a\\b", "a\x00b", ".coffer-tmp-1", "x/.coffer-tmp-abc"}
	for _, k := range bad {
		if err := fs.ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) = nil, want error", k)
		}
	}
}

func TestInvalidKeysRejected(t *testing.T) {
	root := t.TempDir()
	s, err := fs.New(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"../escape", "/etc/passwd", "a//b", ""} {
		if _, err := s.Put(ctx, k, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("Put(%q) error = %v, want invalid key", k, err)
		}
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Get(%q) error = %v, want invalid key", k, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err == nil {
		t.Error("Put(../escape) wrote outside the root")
	}
	for _, err := range s.List(ctx, "../") {
		if err == nil {
			t.Error("List(../) yielded an object")
		}
	}
}

func TestDeleteRemovesEmptyDirs(t *testing.T) {
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "j/b1/payload", strings.NewReader("p")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "j/b2/payload", strings.NewReader("p")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "j/b1/payload"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "j", "b1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory j/b1 still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "j", "b2", "payload")); err != nil {
		t.Errorf("j/b2/payload: %v", err)
	}
	// Deleting a "directory" deletes nothing.
	if err := s.Delete(ctx, "j/b2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "j", "b2", "payload")); err != nil {
		t.Errorf("Delete(j/b2) touched j/b2/payload: %v", err)
	}
}

func TestString(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "file://"+filepath.ToSlash(dir); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
