package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/snapshot"
)

// WriterLoader returns a loader that copies the plain dump to w (e.g.
// stdout). It cannot be reset, so a restore falls back to another copy only
// while no byte has been written.
func WriterLoader(w io.Writer, name string) snapshot.Loader { return &writerLoader{w: w, name: name} }

type writerLoader struct {
	w    io.Writer
	name string
}

func (l *writerLoader) Prepare(context.Context) error { return nil }
func (l *writerLoader) Load(_ context.Context, r io.Reader) error {
	_, err := io.Copy(l.w, r)
	return err
}
func (l *writerLoader) Reset(context.Context) error {
	return fmt.Errorf("%s already received part of a bad copy and cannot be rewound; restore to a file instead", l.name)
}
func (l *writerLoader) String() string { return l.name }

// FileLoader returns a loader that writes the plain dump to path: to a
// temporary file in the same directory, synced and renamed into place only
// when the whole dump passed every check. An existing file is refused
// unless force.
func FileLoader(path string, force bool) snapshot.Loader {
	return &fileLoader{path: path, force: force}
}

type fileLoader struct {
	path  string
	force bool
}

func (l *fileLoader) String() string { return l.path }

func (l *fileLoader) Prepare(context.Context) error {
	if _, err := os.Stat(l.path); err == nil && !l.force {
		return fmt.Errorf("%s already exists; use --force to replace it", l.path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (l *fileLoader) Load(_ context.Context, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(l.path), "."+filepath.Base(l.path)+".coffer-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

// Reset has nothing to do: a failed Load leaves no file behind.
func (l *fileLoader) Reset(context.Context) error { return nil }
