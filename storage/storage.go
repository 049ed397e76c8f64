// Package storage defines where backup objects live: a small Store interface
// that knows nothing of backups, and the errors every implementation shares.
//
// Implementations live in sub-packages (storage/fs, storage/s3) and must pass
// the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// ErrNotExist is returned (wrapped) by Get, Stat and Delete when the key does
// not exist. Test with errors.Is.
var ErrNotExist = errors.New("object does not exist")

// ErrExist is returned (wrapped) by Creator.Create when the key already exists.
var ErrExist = errors.New("object already exists")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // full key relative to the store's root (no leading slash)
	Size    int64     // bytes
	ModTime time.Time // last modification, as the store reports it
	ETag    string    // opaque version tag; empty when the store has none
}

// Destination is a store under the name the configuration gives it.
type Destination struct {
	Name  string
	Store Store
}

// A Store holds objects at one destination.
//
// Put reads r to EOF and then makes the object visible under key, replacing
// any previous object. If r returns an error other than io.EOF, or ctx is
// cancelled, Put MUST leave nothing visible under key (and, for S3, no
// multipart upload behind) and return an error. A caller aborts an upload by
// closing the pipe feeding r with an error.
//
// Get returns the object's bytes; Stat its metadata; List every object whose
// key starts with prefix, in lexical key order, across all pages; Delete
// removes the object (deleting a missing key is not an error).
//
// Keys use "/" as separator and never start with "/". A Store is safe for
// concurrent use.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader) (ObjectInfo, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]
	Delete(ctx context.Context, key string) error
	// String names the destination for messages, e.g. "s3://bucket/prefix"
	// or "file:///var/backups". It never contains credentials.
	String() string
}

// Creator is implemented by stores that can create an object only when the
// key does not exist yet (S3 If-None-Match: *, O_EXCL/link on a filesystem).
// Create has Put's abort guarantees and returns ErrExist when key exists.
type Creator interface {
	Create(ctx context.Context, key string, r io.Reader) (ObjectInfo, error)
}

// Create writes r under key only if key does not exist yet, using the store's
// Creator implementation. Stores without one fall back to Stat then Put,
// which is not atomic.
func Create(ctx context.Context, s Store, key string, r io.Reader) (ObjectInfo, error) {
	if c, ok := s.(Creator); ok {
		return c.Create(ctx, key, r)
	}
	if _, err := s.Stat(ctx, key); err == nil {
		return ObjectInfo{}, ErrExist
	} else if !errors.Is(err, ErrNotExist) {
		return ObjectInfo{}, err
	}
	return s.Put(ctx, key, r)
}

// ErrLocked is returned (wrapped) when a store refuses to delete an object
// because an Object Lock retention or legal hold protects it.
var ErrLocked = errors.New("object is locked")

// ErrPreconditionFailed is returned (wrapped) by Swapper.Replace when the
// object's current version is not the one the caller named.
var ErrPreconditionFailed = errors.New("object changed since it was read")

// Swapper is implemented by stores that can replace a small object only if
// it is still the version the caller read (S3 If-Match on the ETag). Leases
// are built on it together with Creator.
type Swapper interface {
	// Replace writes data under key only if the object's current ETag is
	// etag; otherwise it returns ErrPreconditionFailed and changes nothing.
	Replace(ctx context.Context, key string, data []byte, etag string) (ObjectInfo, error)
}

// Disposer is implemented by stores that keep old versions of objects (S3
// versioned buckets). Dispose removes every version and delete marker of
// key, so nothing of the object can be recovered from the store; it returns
// ErrLocked (wrapped) when Object Lock protects a version, and how many
// versions it removed.
type Disposer interface {
	Dispose(ctx context.Context, key string) (removed int, err error)
}

// Dispose securely removes key: every version where the store keeps
// versions, otherwise a plain Delete.
func Dispose(ctx context.Context, s Store, key string) (int, error) {
	if d, ok := s.(Disposer); ok {
		return d.Dispose(ctx, key)
	}
	if err := s.Delete(ctx, key); err != nil {
		return 0, err
	}
	return 1, nil
}

// Upload is an unfinished multipart upload.
type Upload struct {
	Key       string
	ID        string
	Initiated time.Time
}

// UploadLister is implemented by stores that can hold unfinished multipart
// uploads (S3), so leftovers from a killed process can be swept.
type UploadLister interface {
	// Uploads lists unfinished uploads whose key starts with prefix.
	Uploads(ctx context.Context, prefix string) iter.Seq2[Upload, error]
	// AbortUpload discards an unfinished upload and its parts.
	AbortUpload(ctx context.Context, u Upload) error
}

// VersionKeyLister is implemented by stores that keep old versions: it
// lists every key under prefix that has any version or delete marker,
// including keys List no longer shows (deleted, with old versions left).
// Purge uses it so that a tenant's data is gone in every version.
type VersionKeyLister interface {
	VersionKeys(ctx context.Context, prefix string) iter.Seq2[string, error]
}

// Clock is implemented by stores that can tell their own time: the time
// the server (or the file system) holding the objects stamps them with,
// read fresh on each call. Retention compares it with the host's clock
// before deleting anything, so that a host clock that jumped forward (or
// back) cannot make backups look older (or newer) than they are.
type Clock interface {
	// Now returns the store's current time. Its resolution may be as
	// coarse as a second (an HTTP Date header).
	Now(ctx context.Context) (time.Time, error)
}

// PartReader is a stream that can hand out its bytes as buffers shared,
// read-only, by several uploads of the same data, so that each store need
// not copy them into buffers of its own (a backup to two S3 buckets then
// holds one set of part buffers, not two). Stores that upload in parts use
// NextPart when the reader given to Put has it, and read it through Read
// otherwise; a stream is consumed through one of the two, never both.
type PartReader interface {
	io.Reader
	// NextPart returns the stream's next size bytes, fewer only where the
	// stream ends, and io.EOF with no bytes once it has ended. The caller
	// must not modify data, and must call release exactly once when it no
	// longer reads data (also when the upload fails).
	NextPart(ctx context.Context, size int64) (data []byte, release func(), err error)
}
