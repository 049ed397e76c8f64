package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/buildinfo"
)

func TestPrintVersion(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b, buildinfo.Info{
		Version: "v1.2.3+dirty", Commit: "b4f7f6bfac57f394cee7ec2774e936924d9b37c6", Modified: true,
		CommitTime: "2026-12-02T17:32:03Z", GoVersion: "go1.27.3",
		Age: "v1.3.1", Zstd: "v1.20.3", AWSSDK: "v1.47.7", S3: "v1.114.8",
	})
	want := `coffer version v1.2.3+dirty
commit       b4f7f6bfac57f394cee7ec2774e936924d9b37c6 (modified)
commit time  2026-12-02T17:32:03Z
go           go1.27.3
age          filippo.io/age v1.3.1
zstd         github.com/klauspost/compress v1.20.3
aws sdk      github.com/aws/aws-sdk-go-v2 v1.47.7
s3           github.com/aws/aws-sdk-go-v2/service/s3 v1.114.8
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	printVersion(&b, buildinfo.Info{Version: "dev", GoVersion: "go1.27.3"})
	want = `coffer version dev
commit       none recorded (built outside a git checkout, or with -buildvcs=false)
commit time  unknown
go           go1.27.3
age          unknown
zstd         unknown
aws sdk      unknown
s3           unknown
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// buildCoffer builds the coffer binary into a temporary directory with
// the extra go build flags.
func buildCoffer(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coffer")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// run runs bin with args in dir and returns its stdout; a non-zero exit
// fails the test.
func run(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("coffer %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func versionJSON(t *testing.T, bin string) buildinfo.Info {
	t.Helper()
	out := run(t, "", bin, "version", "--json")
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	return info
}

// git runs git in the current directory (the checkout holding this
// package) and returns its trimmed output, skipping the test when this is
// no git checkout.
func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Skipf("not built from a git checkout (git %s: %v)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestBinaryStampedFromGit builds the real binary from this checkout:
// `coffer version --json` names the checked-out commit and whether the
// tree is modified, and the version is derived from it, not "dev". The
// version line of `coffer version` is the one `coffer --version` prints.
func TestBinaryStampedFromGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coffer binary")
	}
	head := git(t, "rev-parse", "HEAD")
	modified := git(t, "status", "--porcelain") != ""
	// -buildvcs=true: a GOFLAGS of -buildvcs=false in go env must not
	// turn the stamp off here.
	bin := buildCoffer(t, "-buildvcs=true")
	info := versionJSON(t, bin)
	if info.Commit != head || info.Modified != modified {
		t.Errorf("commit %q, modified %v; want %q, %v", info.Commit, info.Modified, head, modified)
	}
	derived := strings.Contains(info.Version, head[:12]) || strings.HasPrefix(info.Version, "v") // pseudo-version or tag
	if info.Version == buildinfo.Unknown || !derived {
		t.Errorf("version %q: want one derived from the module version or commit %s", info.Version, head[:12])
	}
	if modified != strings.HasSuffix(info.Version, "+dirty") {
		t.Errorf("version %q: modified tree is %v", info.Version, modified)
	}
	if info.GoVersion == "" || info.Age == "" || info.Zstd == "" || info.AWSSDK == "" || info.S3 == "" {
		t.Errorf("version --json %+v: a Go or library version is missing", info)
	}
	line := "coffer version " + info.Version + "\n"
	if got := run(t, "", bin, "--version"); got != line {
		t.Errorf("coffer --version printed %q; want %q", got, line)
	}
	if got := run(t, "", bin, "version"); !strings.HasPrefix(got, line) || !strings.Contains(got, head) {
		t.Errorf("coffer version printed\n%s\nwant it to start with %q and name %s", got, line, head)
	}
}

// TestReleaseVersionRecorded builds the binary with a release version set
// at link time (the path the package doc of internal/buildinfo gives),
// runs the demo (a real backup to two local directories and a restore
// drill), and checks that `coffer version` prints that version and that
// every manifest and drill report the binary wrote records it.
func TestReleaseVersionRecorded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coffer binary")
	}
	const release = "v9.8.7-test"
	bin := buildCoffer(t, "-ldflags", "-X github.com/coffer-backup/coffer/internal/buildinfo.version="+release)
	if got := versionJSON(t, bin).Version; got != release {
		t.Fatalf("version --json: version %q; want %q", got, release)
	}
	if got := run(t, "", bin, "--version"); got != "coffer version "+release+"\n" {
		t.Errorf("coffer --version printed %q", got)
	}

	dir := t.TempDir()
	run(t, dir, bin, "demo", "--dir", "demo", "--log-format", "json")
	manifests, _ := filepath.Glob(filepath.Join(dir, "demo", "buckets", "*", "music-hub", "*", "manifest.json"))
	if len(manifests) != 2 {
		t.Fatalf("manifests %v; want one on each of the demo's two destinations", manifests)
	}
	for _, path := range manifests {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Manifest struct {
				CofferVersion string `json:"coffer_version"`
			} `json:"manifest"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if env.Manifest.CofferVersion != release {
			t.Errorf("%s: coffer_version %q; want %q", path, env.Manifest.CofferVersion, release)
		}
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "demo", "state", "drills", "music-hub", "*.json"))
	if len(reports) != 1 {
		t.Fatalf("drill reports %v; want the demo's one", reports)
	}
	data, err := os.ReadFile(reports[0])
	if err != nil {
		t.Fatal(err)
	}
	rep, err := drill.DecodeReport(data)
	if err != nil {
		t.Fatalf("%s: %v", reports[0], err)
	}
	if rep.CofferVersion != release {
		t.Errorf("drill report coffer_version %q; want %q", rep.CofferVersion, release)
	}
}
