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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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
	// CAFile is the PEM file of the CA that signed an https server's
	// certificate (StartMinIOTLS); empty for http servers.
	CAFile string
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
	return startMinIO(t, "", "")
}

// WriteCertificates makes a certificate for host signed by a new CA
// (NewCertificates) and writes them into dir as MinIO's --certs-dir wants
// them (public.crt, private.key 0600), with the CA's certificate as
// ca.crt, whose path it returns.
func WriteCertificates(dir, host string) (caFile string, err error) {
	caPEM, certPEM, keyPEM, err := NewCertificates(host)
	if err != nil {
		return "", err
	}
	caFile = filepath.Join(dir, "ca.crt")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{filepath.Join(dir, "private.key"), keyPEM, 0o600}, {filepath.Join(dir, "public.crt"), certPEM, 0o644}, {caFile, caPEM, 0o644}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return "", err
		}
	}
	return caFile, nil
}

// StartMinIOTLS is StartMinIO serving https on 127.0.0.1 with a
// certificate signed by a CA made for this test alone (not in any system
// trust store); the server's CAFile names that CA's PEM file.
func StartMinIOTLS(t testing.TB) (S3Server, func()) {
	t.Helper()
	certsDir := t.TempDir()
	caFile, err := WriteCertificates(certsDir, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return startMinIO(t, certsDir, caFile)
}

// NewCertificates makes a fresh CA and a server certificate it signs for
// host (an IP address or a DNS name), valid for a day. It returns the
// CA's certificate, the server's certificate and the server's private key,
// PEM-encoded.
func NewCertificates(host string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Coffer test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		leaf.IPAddresses = []net.IP{ip}
	} else {
		leaf.DNSNames = []string{host}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// startMinIO starts a private MinIO server, serving https with the
// certificate in certsDir, signed by the CA in caFile, when certsDir is not
// empty.
func startMinIO(t testing.TB, certsDir, caFile string) (S3Server, func()) {
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
	args := []string{"server", "--quiet", "--address", addr, "--console-address", consoleAddr}
	client := http.DefaultClient
	if certsDir != "" {
		s.Endpoint = "https://" + addr
		s.CAFile = caFile
		args = append(args, "--certs-dir", certsDir)
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append(args, t.TempDir())...)
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
	if err := pollHTTP(client, s.Endpoint+"/minio/health/live", 30*time.Second); err != nil {
		stop()
		t.Fatalf("minio on %s did not come up: %v\n%s", addr, err, out.String())
	}
	return s, stop
}

func waitHTTP(t testing.TB, url string, d time.Duration) {
	t.Helper()
	if err := pollHTTP(http.DefaultClient, url, d); err != nil {
		Missing(t, "S3 server "+strings.TrimSuffix(url, "/minio/health/live")+" ("+err.Error()+")")
	}
}

func pollHTTP(client *http.Client, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
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

// Chromium returns the path of Debian's chromium (scripts/services.sh
// installs it), skipping the test without it, failing it in CI.
func Chromium(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		Missing(t, "the chromium command (Debian package chromium; scripts/services.sh installs it)")
	}
	return p
}

// RunChromium runs headless chromium (bin, from Chromium) with args,
// in a fresh profile and home directory, and returns its standard output
// (e.g. the DOM with --dump-dom). It fails the test with chromium's
// standard error when chromium fails or takes over two minutes.
func RunChromium(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-color-profile=srgb", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}
