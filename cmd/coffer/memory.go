package main

import (
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Coffer's memory is bounded by its pipeline, not by the database: about
// 19 MiB of live heap of its own (zstd encoders and 1 MiB frames, TLS and
// the AWS SDK) plus the part buffers of the S3 uploads (storage/s3: at
// most max(Concurrency, 2) × PartSize, 10 MiB with the defaults; a backup
// whose destinations are all S3 shares one set between them, see
// backup/parts.go), and about 9 MiB the runtime keeps besides the heap
// (stacks, GC metadata). A soft memory limit a little above that bound
// keeps the garbage collector from letting the heap double above it: a
// backup to two buckets then peaks at 56-59 MiB of RSS instead of 95 MiB.
//
// The part size doubles after every 1,000 parts (4.9 GiB stored, a dump
// of about 20 GB at 4:1), so that 10,000 parts hold 4.8 TiB; the part
// buffers then double too (20 MiB per upload), and the limit follows them
// (setMemoryLimit): a limit below the live heap would have the collector
// run without end. It follows them too when the uploads of a backup do
// not share their parts (a local destination beside S3 ones).
//
// The margin matters: measured on a 1 GB backup to two buckets (live heap
// 31 MiB, before the parts were shared), a 40 MiB limit made the collector
// run 280 times (5% of the CPU, 7% more wall time than with 80 MiB), 44
// MiB 13 times, 50 MiB 11 times. With shared parts and 1 MiB frames: 40
// MiB 13 times (56.0 MiB peak RSS), 42 MiB 11 times (58.2), 44 MiB 10.
const (
	// ownMemory is the pipeline without its uploads, with the runtime's
	// own memory and room for garbage.
	ownMemory = 32 << 20
	// uploadMemory is one S3 upload's part buffers with the defaults.
	uploadMemory = 2 * s3.DefaultPartSize
)

// defaultMemoryLimit is the soft heap limit before a configuration is
// read: a backup to buckets that share their part buffers.
const defaultMemoryLimit = ownMemory + uploadMemory

// memoryLimit is the soft heap limit for cfg: each of the jobs the daemon
// runs at once may hold the part buffers of its S3 uploads, one set when
// they are all S3 (shared), else one per S3 destination.
func memoryLimit(cfg *config.Config) int64 {
	uploads := 0
	for _, job := range cfg.Jobs {
		names := job.Destinations
		if len(names) == 0 {
			names = slices.Collect(maps.Keys(cfg.Destinations))
		}
		s3Dests := 0
		for _, n := range names {
			if d := cfg.Destinations[n]; d != nil && d.Type == "s3" {
				s3Dests++
			}
		}
		if s3Dests > 0 && s3Dests == len(names) {
			s3Dests = 1 // shared
		}
		uploads = max(uploads, s3Dests)
	}
	return ownMemory + int64(uploads*max(cfg.Daemon.MaxConcurrent, 1))*uploadMemory
}

// memoryBase is the soft limit set by setMemoryLimit, before part
// buffers outgrow it.
var (
	memoryMu   sync.Mutex
	memoryBase int64
)

// setMemoryLimit sets limit unless GOMEMLIMIT is given, which wins, and
// from then on raises it when the S3 uploads' part buffers need more than
// limit allowed for them: the part size doubles after every 1,000 parts
// (a dump of about 20 GB at 4:1), and a limit below the live heap would
// have the collector run without end (up to half the CPU).
func setMemoryLimit(limit int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	memoryMu.Lock()
	memoryBase = limit
	memoryMu.Unlock()
	followPartMemory(storage.PartMemory())
	storage.OnPartMemory(followPartMemory)
}

// followPartMemory sets the soft limit for the part memory now in use
// (read again under the lock, so concurrent uploads cannot leave an older
// figure in place).
func followPartMemory(int64) {
	memoryMu.Lock()
	defer memoryMu.Unlock()
	debug.SetMemoryLimit(limitWithParts(memoryBase, storage.PartMemory()))
}

// limitWithParts is the soft limit for a configured base and parts bytes
// of part buffers: base, or the pipeline's own memory plus the parts when
// that is more.
func limitWithParts(base, parts int64) int64 { return max(base, ownMemory+parts) }
