package backup

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// Prior is what the next backup of a job needs to know of the earlier
// ones, read from the job's verified catalog (manifest.ReadCatalog). Only
// manifests whose signature verifies and that describe the backup their
// key names count: a manifest key someone else put in a bucket, however
// new its id and however many, can neither lower the shrink floor nor
// reset or push the sequence.
type Prior struct {
	// ID and PlainBytes describe the newest verified backup whose payload
	// is whole on some destination; "" and 0 when there is none.
	ID         string
	PlainBytes int64
	// Sequence is the highest sequence number among the verified
	// manifests (whole or not: a number once used is not used again); 0
	// when there is none.
	Sequence int64
}

// ReadPrior reads the verified catalog of job on dests (every destination
// at once, so a slow one costs its own round trips only). A manifest key
// that does not verify is logged and not used; a destination that does
// not answer within wait is logged and skipped. With nothing verified,
// Prior is empty: no shrink floor, and the next backup is sequence 1.
func ReadPrior(ctx context.Context, job string, dests []storage.Destination, trust manifest.Trust, wait time.Duration, log *zap.Logger) Prior {
	if wait <= 0 {
		wait = DefaultStallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := manifest.ReadCatalog(ctx, job, dests, trust, nil)
	for _, d := range dests {
		if err, down := c.Unreachable[d.Name]; down {
			log.Warn("previous backups not listed; shrink check and sequence ignore this destination",
				zap.String("job", job), zap.String("destination", d.Name), zap.Error(err))
		}
	}
	for _, u := range c.Untrusted {
		log.Warn("manifest not trusted; not used for the shrink check and sequence",
			zap.String("job", job), zap.String("destination", u.Destination), zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	var p Prior
	if b, ok := c.Newest(); ok {
		p.ID, p.PlainBytes = b.ID, b.Manifest.Plain.Bytes
	}
	for _, b := range c.Backups {
		p.Sequence = max(p.Sequence, b.Manifest.Sequence)
	}
	for _, in := range c.Incomplete {
		p.Sequence = max(p.Sequence, in.Manifest.Sequence)
	}
	return p
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
