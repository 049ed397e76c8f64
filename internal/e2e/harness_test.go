package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

// cofferBin is the binary under test, built once by TestMain with the
// release version e2eVersion set at link time.
var cofferBin string

// e2eVersion is the version the binary under test reports and records.
const e2eVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coffer-e2e-")
	if err != nil {
		panic(err)
	}
	cofferBin = filepath.Join(dir, "coffer")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/coffer-backup/coffer/internal/buildinfo.version="+e2eVersion,
		"-o", cofferBin, "../../cmd/coffer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build coffer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bucket is one test bucket on one MinIO server.
type bucket struct {
	server testenv.S3Server
	name   string
	store  *s3.Store
}

// newBucket creates a fresh bucket on server, removed at cleanup.
func newBucket(t *testing.T, server testenv.S3Server) *bucket {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "coffer-e2e-" + hex.EncodeToString(b[:])
	st, err := s3.New(context.Background(), s3.Options{
		Endpoint: server.Endpoint, Region: server.Region, Bucket: name, PathStyle: true,
		AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatalf("create bucket %s on %s: %v", name, server.Endpoint, err)
	}
	t.Cleanup(func() {
		if err := st.RemoveBucket(context.Background()); err != nil {
			t.Logf("cleanup (server may be stopped on purpose): %v", err)
		}
	})
	return &bucket{server: server, name: name, store: st}
}

// keys lists every object key in the bucket.
func (b *bucket) keys(t *testing.T) []string {
	t.Helper()
	var out []string
	for o, err := range b.store.List(context.Background(), "") {
		if err != nil {
			t.Fatalf("list %s: %v", b.name, err)
		}
		out = append(out, o.Key)
	}
	return out
}

func (b *bucket) yaml(name string) string {
	return fmt.Sprintf(`  %s:
    type: s3
    endpoint: %s
    region: %s
    bucket: %s
    path_style: true
    insecure_http: true
    access_key_id: %s
    secret_access_key: ${COFFER_E2E_S3_SECRET}
`, name, b.server.Endpoint, b.server.Region, b.name, b.server.AccessKey)
}

// env is one test's working set: an age key pair, a signing key, a
// config, two buckets and a state directory of its own.
type env struct {
	t          *testing.T
	dir        string
	identity   string
	recipient  string
	signingKey string // the manifest signing key file
	signingPub string // its public key, coffer-sign1:...
	config     string
	primary    *bucket
	offsite    *bucket
	extraEnv   []string
}

// newEnv makes an identity and buckets on the shared primary and offsite
// MinIO servers (or the given ones).
func newEnv(t *testing.T, primary, offsite testenv.S3Server) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.primary = newBucket(t, primary)
	e.offsite = newBucket(t, offsite)
	if primary.SecretKey != offsite.SecretKey {
		t.Fatal("test servers must share a secret key")
	}
	e.extraEnv = []string{"COFFER_E2E_S3_SECRET=" + primary.SecretKey, "STATE_DIRECTORY=" + filepath.Join(e.dir, "state")}
	e.identity = filepath.Join(e.dir, "identity.txt")
	e.signingKey = filepath.Join(e.dir, "signing.key")
	out, _, code := e.run("keygen", "-o", e.identity, "--signing-key", e.signingKey)
	keys := strings.Fields(out)
	if code != 0 || len(keys) != 2 || !strings.HasPrefix(keys[0], "age1") || !strings.HasPrefix(keys[1], "coffer-sign1:") {
		t.Fatalf("keygen: exit %d, stdout %q; want an age recipient and a signing public key", code, out)
	}
	e.recipient, e.signingPub = keys[0], keys[1]
	return e
}

// signingYAML is the config's signing section: the env's key signs, and
// is trusted.
func (e *env) signingYAML() string {
	return "signing:\n  key_file: " + e.signingKey + "\n  public_keys: [" + e.signingPub + "]\n"
}

// header is the top of a config: the signing section and the env's
// recipient.
func (e *env) header() string {
	return e.signingYAML() + "recipients:\n  - " + e.recipient + "\n"
}

// writeConfig writes coffer.yaml with one job whose source block is given
// (indented YAML under "source:").
func (e *env) writeConfig(job, source string) {
	cfg := e.header() + "destinations:\n" + e.primary.yaml("primary") + e.offsite.yaml("offsite") +
		"jobs:\n  " + job + ":\n    source:\n" + source
	e.config = filepath.Join(e.dir, "coffer.yaml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// run runs coffer with args (adding --config when one is written) and
// returns stdout, stderr and the exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	if e.config != "" {
		args = append(args, "--config", e.config)
	}
	return runCmd(e.t, e.extraEnv, nil, cofferBin, args...)
}

func runCmd(t *testing.T, extraEnv []string, stdin io.Reader, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	t.Logf("$ %s %s -> exit %d\n%s%s", filepath.Base(bin), strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// payloadKey returns the only payload key in b.
func (b *bucket) payloadKey(t *testing.T) string {
	t.Helper()
	for _, k := range b.keys(t) {
		if strings.Contains(k, "/payload.") {
			return k
		}
	}
	t.Fatalf("no payload in %s", b.name)
	return ""
}

// get reads a whole object.
func (b *bucket) get(t *testing.T, key string) []byte {
	t.Helper()
	rc, err := b.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// put replaces an object.
func (b *bucket) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if _, err := b.store.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

var _ storage.Store = (*s3.Store)(nil)
