package human

import (
	"math"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                      "0s",
		400 * time.Microsecond:                 "0s",
		-400 * time.Microsecond:                "0s",
		412 * time.Millisecond:                 "412ms",
		1500 * time.Millisecond:                "1.5s",
		12345678 * time.Microsecond:            "12.345s",
		time.Second + 10*time.Millisecond:      "1.01s",
		59999999 * time.Microsecond:            "59.999s",
		time.Minute + 999*time.Millisecond:     "1m",
		45*time.Minute + time.Second:           "45m1s",
		-10 * time.Minute:                      "-10m",
		9*time.Hour + 12*time.Minute:           "9h12m",
		2*day + 3*time.Hour:                    "2d3h",
		28 * day:                               "28d",
		28*day + time.Second:                   "28d1s",
		28*day + time.Second - time.Nanosecond: "28d",
		math.MinInt64:                          "-106751d23h47m16s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for s, want := range map[float64]string{
		0:          "0s",
		1.001:      "1.001s", // 1.001*1e9 is just under 1001000000 as a float
		0.3:        "300ms",
		3600:       "1h",
		10800:      "3h",
		28800.5:    "8h",
		-90:        "-1m30s",
		math.NaN(): "0s",
		1e30:       "106751d23h47m16s",
	} {
		if got := Seconds(s); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", s, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0 B",
		1023:          "1023 B",
		1024:          "1.0 KiB",
		1536:          "1.5 KiB",
		200 << 20:     "200.0 MiB",
		1181116006:    "1.1 GiB",
		math.MaxInt64: "8.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
