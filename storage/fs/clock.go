package fs

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

var _ storage.Clock = (*Store)(nil)

// Now returns the time the file system stamps new files with: it creates
// a temporary file in the store's root, reads its modification time and
// removes it. For a directory on a network file system that is the
// server's clock; for a local disk it is the kernel's. A temporary file
// left by a crash in between is swept like any interrupted write's.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, fmt.Errorf("read the time of %s: %w", s, err)
	}
	f, err := os.CreateTemp(s.root, tempPrefix+"clock-*")
	if err != nil {
		return time.Time{}, fmt.Errorf("read the time of %s: %w", s, err)
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the time of %s: %w", s, err)
	}
	return fi.ModTime(), nil
}
