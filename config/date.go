package config

import (
	"fmt"
	"time"
)

// Date is a calendar day with no time zone of its own, written
// YYYY-MM-DD; a job reads it in its Timezone (see Job.ProtectedSince).
// The zero Date means unset.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses a day written YYYY-MM-DD, e.g. "2026-11-30".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return Date{}, fmt.Errorf("invalid date %q (want YYYY-MM-DD, such as 2026-11-30)", s)
	}
	return Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, nil
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

// String writes d as YYYY-MM-DD; "" when unset.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// In returns the midnight that starts d in loc; the zero time when d is
// unset.
func (d Date) In(loc *time.Location) time.Time {
	if d.IsZero() {
		return time.Time{}
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// MarshalText writes d as YYYY-MM-DD, so JSON shows "2026-11-30".
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD; "" is the zero Date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
