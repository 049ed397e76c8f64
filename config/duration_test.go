package config

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"28d", 28 * Day, "28d"},
		{"2w", 2 * Week, "14d"},
		{"8h", 8 * time.Hour, "8h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"30s", 30 * time.Second, "30s"},
		{"1w2d", 9 * Day, "9d"},
		{"2d12h", 60 * time.Hour, "60h"},
		{"1.5h", 90 * time.Minute, "1h30m"},
		{"-1h", -time.Hour, "-1h"},
		{"-3d", -3 * Day, "-3d"},
		{"0", 0, "0s"},
		{"1h0m10s", time.Hour + 10*time.Second, "1h0m10s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"10m", 10 * time.Minute, "10m"},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
			continue
		}
		if d.D() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, d.D(), tc.want)
		}
		if d.String() != tc.str {
			t.Errorf("ParseDuration(%q).String() = %q, want %q", tc.in, d.String(), tc.str)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("round trip of %q: %v, %v", d.String(), back, err)
		}
	}
	for _, in := range []string{"", "4 weeks", "28", "d", "1.5d", "-", "1y", "2w x", "99999999999999999w", "3 d", "1dd"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(struct{ RTO Duration }{Duration(8 * time.Hour)})
	if err != nil || string(b) != `{"RTO":"8h"}` {
		t.Fatalf("got %s, %v", b, err)
	}
	var v struct{ KeepWithin Duration }
	if err := json.Unmarshal([]byte(`{"KeepWithin":"4w"}`), &v); err != nil || v.KeepWithin.D() != 28*Day {
		t.Fatalf("got %v, %v", v.KeepWithin, err)
	}
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"28d", "2w", "1h30m", "-3d", "0", "1.5h", "4 weeks"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, time.Duration(d), d.String(), time.Duration(back), err)
		}
	})
}
