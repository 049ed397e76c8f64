package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/coffer-backup/coffer/storage"
)

// Store is a storage.Store, storage.Creator and storage.Clock on a local
// directory tree.
// A key "a/b/c" is the file <root>/a/b/c. It is safe for concurrent use.
type Store struct {
	root string // absolute, cleaned
}

var (
	_ storage.Store        = (*Store)(nil)
	_ storage.Creator      = (*Store)(nil)
	_ storage.UploadLister = (*Store)(nil)
)

// New returns a Store rooted at dir, creating dir (mode 0700) if needed.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("local store: empty directory path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local store %s: not a directory", abs)
	}
	return &Store{root: abs}, nil
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// String returns "file://" and the root directory.
func (s *Store) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put writes r under key, replacing any previous object, atomically: the
// object becomes visible (renamed into place) only after r reached EOF and
// the data was fsynced.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	info, err := s.write(ctx, key, r, false)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s to %s: %w", key, s, err)
	}
	return info, nil
}

// Create is Put that fails with storage.ErrExist when key already exists.
// The final step is a hard link, which the kernel makes atomic.
func (s *Store) Create(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	info, err := s.write(ctx, key, r, true)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("create %s in %s: %w", key, s, err)
	}
	return info, nil
}

func (s *Store) write(ctx context.Context, key string, r io.Reader, exclusive bool) (_ storage.ObjectInfo, err error) {
	if err := ValidateKey(key); err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	final := s.path(key)
	dir := filepath.Dir(final)
	f, err := s.createTemp(dir)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
		// After a rename tmp no longer exists; after a link (or any
		// failure) it must go.
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, iofs.ErrNotExist) && err == nil {
			err = rerr
		}
	}()

	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return storage.ObjectInfo{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	closed = true
	if err := f.Close(); err != nil {
		return storage.ObjectInfo{}, err
	}
	if exclusive {
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, iofs.ErrExist) {
				return storage.ObjectInfo{}, storage.ErrExist
			}
			return storage.ObjectInfo{}, err
		}
	} else if err := os.Rename(tmp, final); err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := syncDir(dir); err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{Key: key, Size: n, ModTime: fi.ModTime()}, nil
}

// createTemp makes dir (and its parents) and a temporary file in it. A
// concurrent Delete may remove a directory that just became empty, so a
// vanished directory is retried.
func (s *Store) createTemp(dir string) (*os.File, error) {
	var err error
	for range 5 {
		if err = s.mkdirs(dir); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirs creates dir and its missing parents below the root with mode 0700,
// fsyncing each parent that gained an entry.
func (s *Store) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir == s.root || parent == dir {
		return os.MkdirAll(dir, 0o700)
	}
	if err := s.mkdirs(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get opens the object under key. The caller must close it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s, mapNotExist(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	return f, nil
}

// Stat returns the metadata of the object under key. ETag is always empty.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s in %s: %w", key, s, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s in %s: %w", key, s, err)
	}
	fi, err := os.Stat(s.path(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.ErrNotExist
	}
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s in %s: %w", key, s, mapNotExist(err))
	}
	return storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object under key and then any directories left empty
// (up to, not including, the root). A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil // a directory is not an object
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	if err := s.removeEmptyDirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	return nil
}

// removeEmptyDirs removes dir and its parents while they are empty (up to,
// not including, the root), then fsyncs the first directory that stays.
func (s *Store) removeEmptyDirs(dir string) error {
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil { // not empty, or gone
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := syncDir(dir); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// List yields every object whose key starts with prefix, in lexical
// (byte-wise) key order. Temporary files are never yielded.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(storage.ObjectInfo{}, fmt.Errorf("list %s in %s: %w", prefix, s, err))
			return
		}
		// Start at the deepest directory the prefix names completely.
		base := prefix[:strings.LastIndex(prefix, "/")+1]
		if err := s.walk(ctx, base, prefix, yield); err != nil && err != errStop {
			yield(storage.ObjectInfo{}, fmt.Errorf("list %s in %s: %w", prefix, s, err))
		}
	}
}

var errStop = errors.New("stop")

type entry struct {
	name, sortKey string
	dir           bool
	de            iofs.DirEntry
}

// walk visits the directory for dirKey ("" or ending in "/"). Entries sort by
// name, with "/" appended to directory names, so that the depth-first walk
// yields keys in the same byte-wise order as sorting the full keys ("a.txt"
// sorts before "a/b" because '.' < '/').
func (s *Store) walk(ctx context.Context, dirKey, prefix string, yield func(storage.ObjectInfo, error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	des, err := os.ReadDir(s.path(dirKey))
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		e := entry{name: name, sortKey: name, dir: de.IsDir(), de: de}
		if e.dir {
			e.sortKey += "/"
		} else if !de.Type().IsRegular() {
			continue // symlinks, sockets, ...: not objects
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range entries {
		key := dirKey + e.sortKey
		if e.dir {
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key) {
				continue
			}
			if err := s.walk(ctx, key, prefix, yield); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := e.de.Info()
		if err != nil {
			if isNotExist(err) {
				continue // deleted while listing
			}
			return err
		}
		if !yield(storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil) {
			return errStop
		}
	}
	return nil
}

func isNotExist(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func mapNotExist(err error) error {
	if isNotExist(err) {
		return storage.ErrNotExist
	}
	return err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
