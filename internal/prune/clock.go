package prune

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
)

// errNoClock means a destination's store cannot tell its time.
var errNoClock = errors.New("the store cannot tell its own time (it does not implement storage.Clock)")

// checkClock compares the host's clock with d's own time (storage.Clock)
// and returns an error wrapping retention.ErrClockSkew when they disagree
// by more than retention.ClockTolerance, or when d's time cannot be read.
// host returns the host's current time as the plan sees it; it is read
// just before and after asking d, and the midpoint is compared.
func checkClock(ctx context.Context, d storage.Destination, host func() time.Time) error {
	c, ok := d.Store.(storage.Clock)
	if !ok {
		return fmt.Errorf("%w: %w", retention.ErrClockSkew, errNoClock)
	}
	before := host()
	st, err := c.Now(ctx)
	after := host()
	if err != nil {
		return fmt.Errorf("%w: cannot read the storage's time, so the host clock (%s) cannot be checked: %w",
			retention.ErrClockSkew, before.UTC().Format(time.RFC3339), err)
	}
	return retention.CheckClock(before.Add(after.Sub(before)/2), st)
}
