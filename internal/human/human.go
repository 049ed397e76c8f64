// Package human formats durations for people, with one spelling and one
// rounding rule for every duration Coffer prints: in logs and errors,
// command output, drill reports, notifications and compliance reports.
//
// The rule: a duration is truncated toward zero, never rounded up, so
// that no time is shown as having reached a limit it did not reach (an
// age just past keep_within, a drill just under its RTO). From a minute
// up it is truncated to the second, below a minute to the millisecond.
// It is written in days, hours, minutes and seconds, leaving out the
// units that are zero: "28d", "28d1s", "2d3h", "9h12m", "45m1s",
// "12.345s", "412ms", "0s"; a negative duration gets a leading "-".
// Byte counts are written in binary units (Bytes).
package human

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// day is 24 hours, as config.Day.
const day = 24 * time.Hour

// Duration formats d by the package's rule.
func Duration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
		if d < 0 { // math.MinInt64 has no positive counterpart
			d = math.MaxInt64
		}
	}
	if d < time.Minute {
		d = d.Truncate(time.Millisecond)
	} else {
		d = d.Truncate(time.Second)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return sign + strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	var b strings.Builder
	b.WriteString(sign)
	for _, u := range []struct {
		size time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	if d > 0 {
		b.WriteString(strconv.FormatInt(int64(d/time.Second), 10))
		if ms := (d % time.Second).Milliseconds(); ms > 0 {
			b.WriteString(strings.TrimRight("."+strconv.FormatInt(1000+ms, 10)[1:], "0"))
		}
		b.WriteString("s")
	}
	return b.String()
}

// Seconds formats s seconds (a drill's phase or total time, an RTO) as
// Duration does; s is first rounded to the nanosecond, so that a float
// just under a millisecond boundary is not truncated past it.
func Seconds(s float64) string {
	ns := math.Round(s * float64(time.Second))
	switch {
	case math.IsNaN(ns):
		return "0s"
	case ns >= math.MaxInt64:
		return Duration(math.MaxInt64)
	case ns <= math.MinInt64:
		return Duration(math.MinInt64)
	}
	return Duration(time.Duration(ns))
}

// Bytes formats n bytes in binary units with one decimal: "512 B",
// "1.5 KiB", "1.1 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}
