package main

import (
	"testing"

	"github.com/coffer-backup/coffer/config"
)

// TestMemoryLimit: the soft limit grows with the S3 uploads a backup (or
// the daemon's concurrent backups) may run, so a larger configuration is
// not starved into constant garbage collection, and a local destination
// (no part buffers) adds nothing.
func TestMemoryLimit(t *testing.T) {
	dests := map[string]*config.Destination{
		"primary": {Type: "s3"}, "offsite": {Type: "s3"}, "disk": {Type: "local"},
	}
	const mib = 1 << 20
	for _, tc := range []struct {
		concurrent int
		want       int64
	}{{0, 44 * mib}, {1, 44 * mib}, {2, 64 * mib}} {
		cfg := &config.Config{Destinations: dests}
		cfg.Daemon.MaxConcurrent = tc.concurrent
		if got := memoryLimit(cfg); got != tc.want {
			t.Errorf("max_concurrent %d: limit %d MiB, want %d MiB", tc.concurrent, got/mib, tc.want/mib)
		}
	}
	if defaultMemoryLimit != 44*mib {
		t.Errorf("default limit %d MiB, want 44 MiB (a backup to two buckets)", defaultMemoryLimit/mib)
	}
}

// TestLimitWithParts: while the part buffers fit what the configured limit
// allows for them, the limit stays; once they grow past it (parts double
// after 1,000), the limit makes room for them above the pipeline's own
// memory, so the collector is not left to run without end.
func TestLimitWithParts(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ parts, want int64 }{
		{0, 44 * mib},
		{20 * mib, 44 * mib},  // two uploads of 2 x 5 MiB parts
		{40 * mib, 64 * mib},  // their parts doubled to 10 MiB
		{80 * mib, 104 * mib}, // and again
	} {
		if got := limitWithParts(defaultMemoryLimit, tc.parts); got != tc.want {
			t.Errorf("%d MiB of parts: limit %d MiB, want %d MiB", tc.parts/mib, got/mib, tc.want/mib)
		}
	}
}
