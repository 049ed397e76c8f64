package main

import (
	"os"
	"runtime/debug"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage/s3"
)

// Coffer's memory is bounded by its pipeline, not by the database: about
// 11 MiB of its own (zstd encoders and frames, the fan-out's chunks, TLS and
// the AWS SDK) plus the part buffers of each S3 upload (storage/s3: at most
// max(Concurrency, 2) × PartSize, 10 MiB with the defaults). A soft memory
// limit at that bound, with room for garbage, keeps the garbage collector
// from letting the heap double above it: a backup to two buckets then peaks
// under 64 MiB of RSS instead of 95 MiB.
const (
	// ownMemory is the pipeline without its uploads, with headroom.
	ownMemory = 20 << 20
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

// setMemoryLimit sets limit unless GOMEMLIMIT is given, which wins.
func setMemoryLimit(limit int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}
