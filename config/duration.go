package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units Duration adds to Go's: "d" is 24 hours and
// "w" is 7 days, whatever the calendar or daylight saving time says.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// ParseDuration parses a Go duration ("8h", "90m", "1h30m", "30s") in which
// "d" (24h) and "w" (7d) may also be used with whole numbers: "28d", "2w",
// "1w3d", "2d12h". A leading sign is allowed; a number without a unit is
// not, except "0".
func ParseDuration(s string) (Duration, error) {
	bad := func() (Duration, error) {
		return 0, fmt.Errorf("invalid duration %q (want a number and a unit, like 28d, 2w, 8h, 90m or 1h30m)", s)
	}
	rest := s
	var b strings.Builder
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		b.WriteByte(rest[0])
		rest = rest[1:]
	}
	if rest == "" {
		return bad()
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		num := rest[:i]
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		unit := rest[i:j]
		rest = rest[j:]
		if unit != "d" && unit != "w" {
			b.WriteString(num + unit)
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(Week/time.Hour) {
			return bad()
		}
		hours := n * 24
		if unit == "w" {
			hours *= 7
		}
		b.WriteString(strconv.FormatInt(hours, 10) + "h")
	}
	d, err := time.ParseDuration(b.String())
	if err != nil {
		return bad()
	}
	return Duration(d), nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the shortest usual spelling of d, which ParseDuration
// reads back to the same value: whole days as days ("28d", "14d" for
// "2w"), anything else as Go writes it without zero tails ("8h", "1h30m",
// "90s" as "1m30s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td == 0 {
		return "0s"
	}
	if td%Day == 0 {
		return strconv.FormatInt(int64(td/Day), 10) + "d"
	}
	s := td.String()
	if len(s) > 2 && strings.HasSuffix(s, "0s") && (s[len(s)-3] == 'm' || s[len(s)-3] == 'h') {
		s = s[:len(s)-2]
	}
	if len(s) > 2 && strings.HasSuffix(s, "0m") && s[len(s)-3] == 'h' {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalJSON encodes d as a JSON string in String's form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalText encodes d in String's form (YAML and other text encoders).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses text with ParseDuration (it also serves JSON
// strings and YAML scalars decoded outside Load).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
