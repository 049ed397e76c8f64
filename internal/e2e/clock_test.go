package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/lease"
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

// TestDaemonTakesOverPlantedLease: someone with write access to the bucket
// plants the job's HA lease with an expiry in the year 2999. The daemon
// does not stand aside until then: it warns (naming the holder and the
// stored expiry) and takes the lease over lease_ttl after it first saw it,
// and backs up.
func TestDaemonTakesOverPlantedLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	jobs, _ := pgJob(t, "app", 50, "    schedule: \"*/3 * * * * *\"\n")
	cfg := e.daemonConfig("ha.yaml", jobs, daemonYAML+"  ha: true\n  lease_ttl: 5s\n")
	planted := time.Now()
	rec, err := json.Marshal(lease.Record{Holder: "intruder", Token: "planted", Job: "app",
		Acquired: planted, Renewed: planted, Expires: time.Date(2999, 12, 31, 23, 59, 59, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	e.primary.put(t, lease.Key("app"), rec)

	d := e.startDaemon("a", cfg)
	waitFor(t, 40*time.Second, "a backup despite the planted lease", func() bool { return len(e.list(cfg)) > 0 })
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if took := time.Since(planted); took > 30*time.Second {
		t.Errorf("first backup %s after the lease was planted, want about lease_ttl (5s) + a slot", took)
	}
	warned := d.logLines("lease expiry not believed")
	if len(warned) == 0 {
		t.Fatalf("no warning about the planted lease in the log:\n%s", d.out.String())
	}
	for _, w := range warned {
		msg, _ := json.Marshal(w)
		if w["level"] != "warn" || !strings.Contains(string(msg), `\"intruder\"`) || !strings.Contains(string(msg), "2999-12-31T23:59:59Z") {
			t.Errorf("warning %s: want level warn, naming holder \"intruder\" and expiry 2999-12-31T23:59:59Z", msg)
		}
	}
}
