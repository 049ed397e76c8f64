package backup

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// priorDepth is how many manifests per destination ReadPrior tries,
// newest first, before it gives a destination up.
const priorDepth = 3

// Prior is what the next backup of a job needs to know of the earlier
// ones, read from the job's destinations. Only manifests whose signature
// verifies count: a manifest someone else put in a bucket can neither
// lower the shrink floor nor push the sequence.
type Prior struct {
	// ID and PlainBytes describe the newest verified backup; "" and 0
	// when there is none.
	ID         string
	PlainBytes int64
	// Sequence is the highest sequence number among the newest verified
	// backups of the destinations; 0 when there is none.
	Sequence int64
}

// ReadPrior reads the newest manifest of job on each of dests (one
// listing and usually one manifest per destination). A manifest that
// cannot be read or fails its signature is logged and the next older one
// tried, up to a few; a destination that does not answer within wait is
// skipped. With nothing readable, Prior is empty: no shrink floor, and
// the next backup is sequence 1.
func ReadPrior(ctx context.Context, job string, dests []storage.Destination, trust manifest.Trust, wait time.Duration, log *zap.Logger) Prior {
	if wait <= 0 {
		wait = DefaultStallTimeout
	}
	// Every destination is asked at once, so a slow one costs its own
	// round trips only.
	newest := make([]*manifest.Manifest, len(dests))
	var reads sync.WaitGroup
	for i, d := range dests {
		reads.Go(func() { newest[i] = newestOn(ctx, job, d, trust, wait, log) })
	}
	reads.Wait()
	var p Prior
	for _, m := range newest {
		if m == nil {
			continue
		}
		p.Sequence = max(p.Sequence, m.Sequence)
		if m.ID > p.ID {
			p.ID, p.PlainBytes = m.ID, m.Plain.Bytes
		}
	}
	return p
}

// newestOn returns the newest manifest of job on d that reads and
// verifies, or nil.
func newestOn(ctx context.Context, job string, d storage.Destination, trust manifest.Trust, wait time.Duration, log *zap.Logger) *manifest.Manifest {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ids, err := manifest.IDs(ctx, d.Store, job)
	if err != nil {
		log.Warn("previous backups not listed; shrink check and sequence ignore this destination",
			zap.String("job", job), zap.String("destination", d.Name), zap.Error(err))
		return nil
	}
	for _, id := range slices.Backward(ids[max(0, len(ids)-priorDepth):]) {
		m, err := manifest.Read(ctx, d.Store, d.Name, job, id, trust)
		if err == nil {
			return m
		}
		log.Warn("previous backup's manifest unusable; trying an older one",
			zap.String("job", job), zap.String("destination", d.Name), zap.String("backup", id), zap.Error(err))
	}
	return nil
}

// ShrinkFloor returns the smallest acceptable dump size: the newest
// verified backup's plain size less maxShrinkPercent. It is 0 (no floor)
// with no prior backup or when the check is off (100).
func (p Prior) ShrinkFloor(maxShrinkPercent int) int64 {
	if maxShrinkPercent >= 100 || maxShrinkPercent < 0 {
		return 0
	}
	return p.PlainBytes * int64(100-maxShrinkPercent) / 100
}

// NextSequence is the sequence number of the next backup.
func (p Prior) NextSequence() int64 { return p.Sequence + 1 }
