package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// randomFile writes n random bytes to a new file and returns its path.
func randomFile(t *testing.T, n int) string {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// execSource is a source block that dumps the file at path.
func execSource(path string) string {
	return "      type: exec\n      command: [cat, " + path + "]\n      extension: bin\n"
}

// restoreFile restores backup id of job (from the first destination that
// serves it) to a file and returns its bytes and the restore's stdout.
func (e *env) restoreFile(job, id string, extra ...string) ([]byte, string) {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), "restored.bin")
	args := append([]string{"restore", "--job", job, "--identity", e.identity, "-o", out}, extra...)
	if id != "" {
		args = append(args, "--id", id)
	}
	stdout, _, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("restore %s/%s: exit %d", job, id, code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return data, stdout
}

// TestConnectionResetMidPart: the offsite connection is reset in the
// middle of an upload part. The SDK's retry sends the part again and the
// backup succeeds on both destinations, each copy restoring the exact
// bytes.
func TestConnectionResetMidPart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	data := randomFile(t, 30<<20) // incompressible: several 8 MiB parts
	proxy := newProxy(t, strings.TrimPrefix(e.offsite.server.Endpoint, "http://"))
	e.writeConfig("blob", execSource(data))
	writeFile(t, e.config, strings.Replace(readFile(t, e.config), e.offsite.server.Endpoint, proxy.url(), 1))

	proxy.resetAfter(12 << 20) // inside the second part
	e.backup("blob")
	if proxy.cuts.Load() != 1 {
		t.Fatalf("proxy reset %d connections, want 1", proxy.cuts.Load())
	}
	b := listJSON(t, e)
	if len(b) != 1 || len(b[0].Destinations) != 2 {
		t.Fatalf("list %+v: want one backup on both destinations", b)
	}
	want, _ := os.ReadFile(data)
	for _, from := range []string{"offsite", "primary"} {
		got, stdout := e.restoreFile("blob", b[0].ID, "--from", from)
		if !bytes.Equal(got, want) || !strings.Contains(stdout, "from "+from) {
			t.Errorf("restore from %s: %d bytes (%q), want the original %d", from, len(got), stdout, len(want))
		}
	}
}

// TestPayloadSwappedBetweenJobs: job b's primary payload is replaced by
// job a's (same recipient, so it decrypts fine). verify refuses it naming
// the primary, and restore serves b's own data from the offsite.
func TestPayloadSwappedBetweenJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	fileA, fileB := randomFile(t, 200_000), randomFile(t, 200_000)
	e.writeConfig("a", execSource(fileA)+"  b:\n    source:\n"+execSource(fileB))
	e.backup("a")
	e.backup("b")
	var keyA, keyB string
	for _, k := range e.primary.keys(t) {
		switch {
		case strings.HasPrefix(k, "a/") && strings.Contains(k, "/payload."):
			keyA = k
		case strings.HasPrefix(k, "b/") && strings.Contains(k, "/payload."):
			keyB = k
		}
	}
	if keyA == "" || keyB == "" {
		t.Fatalf("payloads %q %q", keyA, keyB)
	}
	e.primary.put(t, keyB, e.primary.get(t, keyA))

	out, _, code := e.run("verify", "--job", "b", "--identity", e.identity)
	if code != 1 || !strings.Contains(out, "primary") {
		t.Errorf("verify of b with a's payload: exit %d, want 1 naming primary:\n%s", code, out)
	}
	got, stdout := e.restoreFile("b", "")
	want, _ := os.ReadFile(fileB)
	if !bytes.Equal(got, want) || !strings.Contains(stdout, "from offsite") {
		t.Errorf("restore of b: %d bytes %q; want b's own data from offsite", len(got), stdout)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory (root only;
// in CI a failure is fatal, elsewhere the test is skipped).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("mount a small tmpfs for the disk-full test (needs root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestDiskFullLocalDestination: a local destination on a 2 MiB filesystem
// fills up during a backup. The run ends partial (exit 3) with the S3
// copy committed and nothing visible on the full disk; the earlier backup
// there still restores.
func TestDiskFullLocalDestination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	disk := mountTmpfs(t, 2<<20)
	small := randomFile(t, 100_000)
	cfg := e.signingYAML() + "recipients:\n  - " + e.recipient + "\ndestinations:\n" + e.primary.yaml("primary") +
		"  disk:\n    type: local\n    path: " + disk + "\njobs:\n  blob:\n    source:\n" + execSource(small) +
		"    max_shrink_percent: 100\n"
	e.config = filepath.Join(e.dir, "coffer.yaml")
	writeFile(t, e.config, cfg)
	e.backup("blob")
	first := listJSON(t, e)[0].ID

	big := randomFile(t, 6<<20)
	writeFile(t, e.config, strings.Replace(cfg, small, big, 1))
	_, stderr, code := e.run("backup", "--job", "blob")
	if code != 3 {
		t.Fatalf("backup onto a full disk: exit %d, want 3 (partial)", code)
	}
	if !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, "disk") {
		t.Errorf("stderr does not name the full destination and the cause:\n%s", stderr)
	}
	b := listJSON(t, e)
	if len(b) != 2 || strings.Join(b[1].Destinations, ",") != "primary" {
		t.Fatalf("list %+v: want the new backup on primary only", b)
	}
	var leftovers []string
	filepath.Walk(disk, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(p, b[1].ID) {
			leftovers = append(leftovers, p)
		}
		return nil
	})
	if len(leftovers) > 0 {
		t.Errorf("the failed backup left files on the full disk: %v", leftovers)
	}
	got, stdout := e.restoreFile("blob", first, "--from", "disk")
	want, _ := os.ReadFile(small)
	if !bytes.Equal(got, want) || !strings.Contains(stdout, "from disk") {
		t.Errorf("earlier backup from the full disk: %d bytes %q", len(got), stdout)
	}
	got, _ = e.restoreFile("blob", b[1].ID)
	if want, _ := os.ReadFile(big); !bytes.Equal(got, want) {
		t.Error("the new backup's primary copy does not restore the data")
	}
}

// TestDiskFullStateDir: the daemon's state directory (audit log) is on a
// full filesystem. Backups go on, each failed audit write is logged, and
// the daemon stays up and healthy.
func TestDiskFullStateDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	state := mountTmpfs(t, 64<<10)
	jobs, _ := pgJob(t, "app", 200, "    schedule: \"*/3 * * * * *\"\n")
	cfg := e.daemonConfig("full.yaml", jobs, daemonYAML+"  state_dir: "+state+"\n")
	// Fill the disk after the audit log exists, as happens in production.
	d := e.startDaemon("a", cfg)
	waitFor(t, 30*time.Second, "a first backup", func() bool { return len(e.list(cfg)) >= 1 })
	filler, _ := os.Create(filepath.Join(state, "filler"))
	filler.Write(make([]byte, 128<<10))
	filler.Close()
	// Appends fill the audit log's last page first; then writes fail.
	waitFor(t, 60*time.Second, "a log line saying audit events cannot be recorded", func() bool {
		return len(d.logLines("audit event not recorded")) > 0
	})
	n := len(e.list(cfg))
	waitFor(t, 30*time.Second, "two more backups with the disk full", func() bool { return len(e.list(cfg)) >= n+2 })
	if code, _ := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d with the state disk full", code)
	}
	for _, l := range d.logLines("audit event not recorded") {
		if !strings.Contains(fmt.Sprint(l["error"]), "no space left on device") {
			t.Errorf("log line %v does not give the cause", l)
		}
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
}
