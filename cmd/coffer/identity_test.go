package main

import (
	"strings"
	"testing"
)

// TestIdentityFlagsOr: --identity wins over the configured identity file,
// and the configured passphrase file goes only with the configured
// identity, never with one given on the command line.
func TestIdentityFlagsOr(t *testing.T) {
	for _, tc := range []struct {
		name           string
		flags          identityFlags
		file, passFile string
		want           identityFlags
	}{
		{"nothing given", identityFlags{}, "", "", identityFlags{}},
		{"configured", identityFlags{}, "cfg.txt", "cfg.pass", identityFlags{"cfg.txt", "cfg.pass"}},
		{"configured, --passphrase-file", identityFlags{passFile: "flag.pass"}, "cfg.txt", "cfg.pass", identityFlags{"cfg.txt", "flag.pass"}},
		{"--identity", identityFlags{identity: "flag.txt"}, "cfg.txt", "cfg.pass", identityFlags{identity: "flag.txt"}},
	} {
		if got := tc.flags.or(tc.file, tc.passFile); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestIdentityFlagsLoad(t *testing.T) {
	t.Setenv("COFFER_IDENTITY", "")
	if ids, err := (identityFlags{}).load(false); err != nil || ids != nil {
		t.Errorf("optional, none given: %v, %v; want none and no error", ids, err)
	}
	if _, err := (identityFlags{}).load(true); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("required, none given: %v; want an error naming --identity", err)
	}
}
