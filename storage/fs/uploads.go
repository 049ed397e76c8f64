package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-backup/coffer/storage"
)

// Uploads yields the temporary files that writes interrupted by a crash
// left behind, whose key starts with prefix, as unfinished uploads: Key is
// the temporary file's own key (its directory's key, then its
// ".coffer-tmp-" name), ID its name, Initiated its modification time (a
// write in progress keeps it fresh). A running Put's temporary file is
// listed too; callers judge by Initiated.
func (s *Store) Uploads(ctx context.Context, prefix string) iter.Seq2[storage.Upload, error] {
	return func(yield func(storage.Upload, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(storage.Upload{}, fmt.Errorf("list uploads %s in %s: %w", prefix, s, err))
			return
		}
		base := s.path(prefix[:strings.LastIndex(prefix, "/")+1])
		err := filepath.WalkDir(base, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				if isNotExist(err) {
					return nil // base missing, or removed while walking
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) || !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(s.root, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if isNotExist(err) {
					return nil // finished while listing
				}
				return err
			}
			if !yield(storage.Upload{Key: key, ID: d.Name(), Initiated: fi.ModTime()}, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(storage.Upload{}, fmt.Errorf("list uploads %s in %s: %w", prefix, s, err))
		}
	}
}

// AbortUpload removes the temporary file u names (as Uploads yielded it)
// and any directories left empty. It refuses any key that does not name a
// temporary file, so it can never remove an object. A file already gone is
// not an error.
func (s *Store) AbortUpload(ctx context.Context, u storage.Upload) error {
	if err := validateUploadKey(u.Key); err != nil {
		return fmt.Errorf("abort upload %s in %s: %w", u.Key, s, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("abort upload %s in %s: %w", u.Key, s, err)
	}
	p := s.path(u.Key)
	if err := os.Remove(p); err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("abort upload %s in %s: %w", u.Key, s, err)
	}
	if err := s.removeEmptyDirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("abort upload %s in %s: %w", u.Key, s, err)
	}
	return nil
}

// validateUploadKey checks that key is a valid directory key (or none)
// followed by a temporary file's name.
func validateUploadKey(key string) error {
	dir, name := "", key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		dir, name = key[:i], key[i+1:]
		if err := ValidateKey(dir); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(name, tempPrefix) || len(name) == len(tempPrefix) || strings.ContainsAny(name, "\x00\\") {
		return errors.New("not a temporary file")
	}
	return nil
}
