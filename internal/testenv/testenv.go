// Package testenv finds the real services integration tests talk to
// (PostgreSQL, MariaDB, two MinIO servers, the age and zstd CLIs) through
// environment variables that scripts/services.sh sets.
//
// When a service is missing, a test is skipped on a developer machine but
// FAILS when the CI environment variable is set: CI never skips silently.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment variables read by this package. scripts/services.sh exports
// all of them into .coffer-test/env.
const (
	EnvPostgres      = "COFFER_TEST_PG"            // e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
	EnvMariaDB       = "COFFER_TEST_MARIADB"       // e.g. mysql://root@127.0.0.1:3306/
	EnvS3Primary     = "COFFER_TEST_S3_PRIMARY"    // e.g. http://127.0.0.1:9100
	EnvS3Offsite     = "COFFER_TEST_S3_OFFSITE"    // e.g. http://127.0.0.1:9200
	EnvS3AccessKey   = "COFFER_TEST_S3_ACCESS_KEY" // shared by both MinIO servers
	EnvS3SecretKey   = "COFFER_TEST_S3_SECRET_KEY" // shared by both MinIO servers
	EnvMinIOBinary   = "COFFER_TEST_MINIO_BIN"     // path to the pinned minio binary
	EnvToolDirectory = "COFFER_TEST_BIN"           // directory holding age, age-keygen, ...
)

// InCI reports whether tests run under CI, where missing services fail.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips the test, or fails it under CI, because what is unavailable.
func Missing(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: run scripts/services.sh (or `make test`) first", what)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func lookup(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "$"+name)
	}
	return v
}

// PostgresURL returns the connection URL of the test PostgreSQL server
// (superuser, trust auth).
func PostgresURL(t testing.TB) string { return lookup(t, EnvPostgres) }

// MariaDBURL returns the connection URL of the test MariaDB server
// (root, empty password), as mysql://user[:pass]@host:port/.
func MariaDBURL(t testing.TB) string { return lookup(t, EnvMariaDB) }

// S3Server is one MinIO server reachable on loopback.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
}

// S3 returns the shared test MinIO server named "primary" or "offsite".
func S3(t testing.TB, which string) S3Server {
	t.Helper()
	var env string
	switch which {
	case "primary":
		env = EnvS3Primary
	case "offsite":
		env = EnvS3Offsite
	default:
		t.Fatalf("testenv.S3: unknown server %q (want primary or offsite)", which)
	}
	s := S3Server{
		Endpoint:  lookup(t, env),
		AccessKey: lookup(t, EnvS3AccessKey),
		SecretKey: lookup(t, EnvS3SecretKey),
		Region:    "us-east-1",
	}
	waitHTTP(t, s.Endpoint+"/minio/health/live", 10*time.Second)
	return s
}

// Tool returns the path of a command-line tool (age, zstd, pg_dump, ...),
// looking in $COFFER_TEST_BIN first and then $PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv(EnvToolDirectory); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "the "+name+" command")
	}
	return p
}

// StartMinIO starts a private MinIO server on a free loopback port with its
// own temporary data directory, for tests that stop or break a server. The
// returned stop function kills it (it is also killed at test cleanup).
func StartMinIO(t testing.TB) (S3Server, func()) {
	t.Helper()
	bin := lookup(t, EnvMinIOBinary)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	consoleAddr := l2.Addr().String()
	l2.Close()

	s := S3Server{Endpoint: "http://" + addr, AccessKey: "coffertest", SecretKey: "coffertest-secret-key", Region: "us-east-1"}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "server", "--quiet", "--address", addr, "--console-address", consoleAddr, t.TempDir())
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey, "MINIO_BROWSER=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start minio: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	if err := pollHTTP(s.Endpoint+"/minio/health/live", 30*time.Second); err != nil {
		stop()
		t.Fatalf("minio on %s did not come up: %v\n%s", addr, err, out.String())
	}
	return s, stop
}

func waitHTTP(t testing.TB, url string, d time.Duration) {
	t.Helper()
	if err := pollHTTP(url, d); err != nil {
		Missing(t, "S3 server "+strings.TrimSuffix(url, "/minio/health/live")+" ("+err.Error()+")")
	}
}

func pollHTTP(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}
