package storage

import "sync/atomic"

// partMemory is the memory of the part buffers of every upload in the
// process; partMemoryHook hears of each change.
var (
	partMemory     atomic.Int64
	partMemoryHook atomic.Pointer[func(total int64)]
)

// AddPartMemory records that part buffers of n bytes were allocated (n < 0:
// given up). Uploaders that keep part buffers (storage/s3, the backup's
// shared parts) call it so that PartMemory is the total.
func AddPartMemory(n int64) {
	total := partMemory.Add(n)
	if f := partMemoryHook.Load(); f != nil {
		(*f)(total)
	}
}

// PartMemory returns the bytes that the part buffers of the uploads in
// progress hold. With the S3 defaults it is 10 MiB per upload (or per
// backup whose uploads share their parts) until the part size doubles
// (after 1,000 parts, 4.9 GiB): then 20 MiB, and so on.
func PartMemory() int64 { return partMemory.Load() }

// OnPartMemory calls f with PartMemory each time it changes (a few times
// an upload), on the uploading goroutine: f must be quick. It lets a
// process that bounds its heap (cmd/coffer's soft memory limit) make
// room for parts that grew, rather than collect garbage without end.
func OnPartMemory(f func(total int64)) { partMemoryHook.Store(&f) }

// MaxParts is the most parts one upload can have (S3's limit).
const MaxParts = 10000

// PartSizer is implemented by stores that upload in parts (S3). A backup
// whose destinations all report the same part sizes gives them one shared
// set of part buffers (see PartReader).
type PartSizer interface {
	// PartSize is the size of part n (numbered from 1 to MaxParts) of an
	// upload.
	PartSize(n int32) int64
	// PartBuffers is how many part buffers an upload keeps: the parts in
	// flight and the one being filled.
	PartBuffers() int
}
