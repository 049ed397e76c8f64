package main

import (
	"os"
	"runtime/debug"
	"sync"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Coffer's memory is bounded by its pipeline, not by the database: about
// 11 MiB of live heap of its own (zstd encoders and frames, the fan-out's
// chunks, TLS and the AWS SDK) plus the part buffers of each S3 upload
// (storage/s3: at most max(Concurrency, 2) × PartSize, 10 MiB with the
// defaults), and about 9 MiB the runtime keeps besides the heap (stacks,
// GC metadata). A soft memory limit a little above that bound keeps the
// garbage collector from letting the heap double above it: a backup to
// two buckets then peaks at 62-64 MiB of RSS instead of 95 MiB.
//
// The part size doubles after every 1,000 parts (4.9 GiB stored, a dump
// of about 20 GB at 4:1), so that 10,000 parts hold 4.8 TiB; the part
// buffers then double too (20 MiB per upload), and the limit follows them
// (setMemoryLimit): a limit below the live heap would have the collector
// run without end.
//
// The margin matters: measured on a 1 GB backup to two buckets (live heap
// 31 MiB), a 40 MiB limit made the collector run 280 times (5% of the CPU,
// 7% more wall time than with 80 MiB), 44 MiB 13 times, 50 MiB 11 times.
const (
	// ownMemory is the pipeline without its uploads, with the runtime's
	// own memory and room for garbage.
	ownMemory = 24 << 20
	// uploadMemory is one S3 upload's part buffers with the defaults.
	uploadMemory = 2 * s3.DefaultPartSize
)

// defaultMemoryLimit is the soft heap limit before a configuration is
// read: a backup to two buckets.
const defaultMemoryLimit = ownMemory + 2*uploadMemory

// memoryLimit is the soft heap limit for cfg: every S3 destination may be
// written by each of the jobs the daemon runs at once.
func memoryLimit(cfg *config.Config) int64 {
	uploads := 0
	for _, d := range cfg.Destinations {
		if d.Type == "s3" {
			uploads++
		}
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
	followPartMemory(s3.PartMemory())
	s3.OnPartMemory(followPartMemory)
}

// followPartMemory sets the soft limit for the part memory now in use
// (read again under the lock, so concurrent uploads cannot leave an older
// figure in place).
func followPartMemory(int64) {
	memoryMu.Lock()
	defer memoryMu.Unlock()
	debug.SetMemoryLimit(limitWithParts(memoryBase, s3.PartMemory()))
}

// limitWithParts is the soft limit for a configured base and parts bytes
// of part buffers: base, or the pipeline's own memory plus the parts when
// that is more.
func limitWithParts(base, parts int64) int64 { return max(base, ownMemory+parts) }
