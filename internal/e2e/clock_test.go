package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// soakBin is coffer built with the tag "soak", whose internal/clock adds
// the offset written in the file named by $COFFER_SOAK_CLOCK_FILE. Built
// once, on first use.
var soakBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "coffer-e2e-soak-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "coffer")
	build := exec.Command("go", "build", "-tags", "soak", "-o", bin, "../../cmd/coffer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return bin, build.Run()
})

// TestPruneRefusesHostClockAhead: three backups taken now on both
// destinations; then the host clock jumps 30 days forward (the soak
// build's offset). With the default policy the oldest backup would look
// expired and be deleted though it is minutes old: instead `coffer prune`
// (and its dry run) refuses both destinations, naming host time, storage
// time and the difference, exits 1 and deletes nothing. Without the jump
// it exits 0.
func TestPruneRefusesHostClockAhead(t *testing.T) {
	t.Parallel()
	bin, err := soakBin()
	if err != nil {
		t.Fatalf("build coffer -tags soak: %v", err)
	}
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.extraEnv = append(e.extraEnv, "STATE_DIRECTORY="+t.TempDir())
	e.sqliteJob("lite", 50)
	for range 3 {
		e.backup("lite")
	}
	before := map[string][]string{"primary": e.primary.keys(t), "offsite": e.offsite.keys(t)}

	offset := filepath.Join(t.TempDir(), "clock-offset")
	if err := os.WriteFile(offset, []byte("720h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jumped := append(slices.Clone(e.extraEnv), "COFFER_SOAK_CLOCK_FILE="+offset)
	for _, args := range [][]string{{"prune", "--dry-run"}, {"prune"}} {
		stdout, stderr, code := runCmd(t, jumped, nil, bin, append(args, "--config", e.config)...)
		if code != 1 {
			t.Errorf("%s with the host clock 30 days ahead: exit %d, want 1", strings.Join(args, " "), code)
		}
		for _, d := range []string{"primary", "offsite"} {
			if !strings.Contains(stdout, d+": NOT PRUNED: ") {
				t.Errorf("%s does not say %s was not pruned:\n%s", strings.Join(args, " "), d, stdout)
			}
		}
		for _, want := range []string{"host clock ", "30d ahead of the storage's clock ", "tolerance 5m"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s output lacks %q:\n%s%s", strings.Join(args, " "), want, stdout, stderr)
			}
		}
	}
	for name, b := range map[string]*bucket{"primary": e.primary, "offsite": e.offsite} {
		// The audit trail may have been shipped; backups must not change.
		var got []string
		for _, k := range b.keys(t) {
			if !strings.HasPrefix(k, "_coffer/") {
				got = append(got, k)
			}
		}
		var want []string
		for _, k := range before[name] {
			if !strings.HasPrefix(k, "_coffer/") {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s changed although the host clock jumped:\n got %v\nwant %v", name, got, want)
		}
	}

	if _, _, code := runCmd(t, e.extraEnv, nil, bin, "prune", "--config", e.config); code != 0 {
		t.Errorf("prune with the clock right: exit %d, want 0", code)
	}
}
