package main

import (
	"testing"

	"github.com/coffer-backup/coffer/config"
)

// TestMemoryLimit: the soft limit grows with the S3 uploads a backup (or
// the daemon's concurrent backups) may run, so a larger configuration is
// not starved into constant garbage collection; the uploads of a job whose
// destinations are all S3 share one set of part buffers, and a local
// destination adds none.
func TestMemoryLimit(t *testing.T) {
	dests := map[string]*config.Destination{
		"primary": {Type: "s3"}, "offsite": {Type: "s3"}, "disk": {Type: "local"},
	}
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		jobDests   []string
		concurrent int
		want       int64
	}{
		{"two buckets", []string{"primary", "offsite"}, 0, 42 * mib},
		{"two buckets, one at a time", []string{"primary", "offsite"}, 1, 42 * mib},
		{"two buckets, two at a time", []string{"primary", "offsite"}, 2, 52 * mib},
		{"a bucket and a disk", []string{"primary", "disk"}, 1, 42 * mib},
		{"every destination", nil, 1, 52 * mib},
		{"a disk only", []string{"disk"}, 1, 32 * mib},
	} {
		cfg := &config.Config{Destinations: dests, Jobs: map[string]*config.Job{"app": {Destinations: tc.jobDests}}}
		cfg.Daemon.MaxConcurrent = tc.concurrent
		if got := memoryLimit(cfg); got != tc.want {
			t.Errorf("%s: limit %d MiB, want %d MiB", tc.name, got/mib, tc.want/mib)
		}
	}
	if defaultMemoryLimit != 42*mib {
		t.Errorf("default limit %d MiB, want 42 MiB (a backup to buckets sharing their parts)", defaultMemoryLimit/mib)
	}
}

// TestLimitWithParts: while the part buffers fit what the configured limit
// allows for them, the limit stays; once they grow past it (parts double
// after 1,000), the limit makes room for them above the pipeline's own
// memory, so the collector is not left to run without end.
func TestLimitWithParts(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ parts, want int64 }{
		{0, 42 * mib},
		{10 * mib, 42 * mib},  // shared parts: 2 x 5 MiB
		{20 * mib, 52 * mib},  // doubled to 10 MiB, or two uploads not sharing
		{80 * mib, 112 * mib}, // and more
	} {
		if got := limitWithParts(defaultMemoryLimit, tc.parts); got != tc.want {
			t.Errorf("%d MiB of parts: limit %d MiB, want %d MiB", tc.parts/mib, got/mib, tc.want/mib)
		}
	}
}
