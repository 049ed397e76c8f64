package backup

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
)

// clockWait bounds how long a backup waits for its destinations' clocks
// before it starts.
var clockWait = 5 * time.Second

// hostNow is the host's clock as backups read it (a test can make it jump).
var hostNow = clock.Now

// datingClock is the clock a backup is dated by (its id, Started and
// Finished): a time read once at the check, the host's or, when the host
// disagrees with its destinations' own clocks, the storage's, carried on
// by this process's monotonic clock. The host's wall clock is not read
// again during the backup: it may jump at any moment, and a jump between
// the check and the id would date the backup by a clock nobody checked
// (an id minutes in the past is a backup retention deletes minutes early).
type datingClock struct {
	base time.Time // the time at the check
	at   time.Time // when it was read (monotonic)
	// warning says why the backup is not dated by the host's clock, or
	// that the destinations' clocks disagree; "" when all is well.
	warning string
}

func (c datingClock) now() time.Time {
	return c.base.Add(time.Since(c.at)).UTC()
}

// hostDating is a datingClock on the host's clock, read now.
func hostDating(warning string) datingClock {
	at := time.Now() // monotonic
	return datingClock{base: hostNow(), at: at, warning: warning}
}

// checkDating asks every destination that can tell its time (storage.Clock)
// for it, at once, waiting at most clockWait. A backup's id is its age for
// retention, so it must not come from a clock that is wrong: when the
// host's clock is more than retention.ClockTolerance from the storage's,
// and every destination that answered agrees with the others within the
// tolerance, the backup is dated by the storage's clock (the host's plus
// the median offset) and warning says so. When the destinations disagree
// among themselves, or none answers, the host's clock is used (a lying or
// distant storage alone cannot move the dates), and when they disagree
// warning says that too. prune refuses to delete on a destination whose
// clock disagrees with the host's, so nothing is deleted while it lasts.
func checkDating(ctx context.Context, dests []storage.Destination, log *zap.Logger) datingClock {
	ctx, cancel := context.WithTimeout(ctx, clockWait)
	defer cancel()
	type reading struct {
		name    string
		offset  time.Duration // storage time - host time
		storage time.Time
		at      time.Time // monotonic instant of the reading
	}
	var (
		mu       sync.Mutex
		readings []reading
		wg       sync.WaitGroup
	)
	for _, d := range dests {
		c, ok := d.Store.(storage.Clock)
		if !ok {
			continue
		}
		wg.Go(func() {
			start := time.Now() // monotonic
			host := hostNow()
			st, err := c.Now(ctx)
			half := time.Since(start) / 2
			if err != nil {
				log.Debug("destination's clock not read", zap.String("destination", d.Name), zap.Error(err))
				return
			}
			mu.Lock()
			readings = append(readings, reading{d.Name, st.Sub(host.Add(half)), st, start.Add(half)})
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(readings) == 0 {
		return hostDating("")
	}
	slices.SortFunc(readings, func(a, b reading) int { return cmp.Compare(a.offset, b.offset) })
	lo, hi := readings[0].offset, readings[len(readings)-1].offset
	describe := func() string {
		var parts []string
		for _, r := range readings {
			parts = append(parts, fmt.Sprintf("%s %s", r.name, signed(r.offset)))
		}
		return strings.Join(parts, ", ")
	}
	switch {
	case hi-lo > retention.ClockTolerance:
		return hostDating(fmt.Sprintf("the destinations' clocks disagree with each other by more than %s (%s, relative to the host's): the backup is dated by the host's clock; check the clocks", retention.ClockTolerance, describe()))
	case lo >= -retention.ClockTolerance && hi <= retention.ClockTolerance:
		// The host agrees with the storage: its time at the reading the
		// offsets were measured against.
		med := readings[len(readings)/2]
		return datingClock{base: med.storage.Add(-med.offset), at: med.at}
	}
	med := readings[len(readings)/2]
	off := med.offset
	return datingClock{base: med.storage, at: med.at, warning: fmt.Sprintf("the host's clock is %s the storage's (%s): the backup is dated by the storage's clock; fix the host's clock (prune deletes nothing until they agree)", aheadBehind(off), describe())}
}

// signed formats d with its sign, e.g. "+3d" or "-7m".
func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + human.Duration(d)
	}
	return human.Duration(d)
}

// aheadBehind says how the host's clock stands against a storage whose
// clock is off ahead of the host's.
func aheadBehind(off time.Duration) string {
	if off > 0 {
		return human.Duration(off) + " behind"
	}
	return human.Duration(-off) + " ahead of"
}
