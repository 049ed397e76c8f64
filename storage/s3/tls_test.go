package s3

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage"
)

// noRetry makes a refused connection fail at once, keeping tests short.
func noRetry(o *s3.Options) { o.RetryMaxAttempts = 1 }

// isCertificateError reports whether err is a failed certificate check.
func isCertificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	return errors.As(err, &verr) || errors.As(err, &uerr)
}

// TestTLSPrivateCA talks to a MinIO serving a certificate from a CA that
// no system trusts: refused without the CA, a working store with it in
// ca_file or in $AWS_CA_BUNDLE.
func TestTLSPrivateCA(t *testing.T) {
	srv, _ := testenv.StartMinIOTLS(t)
	t.Setenv(envCABundle, "") // the host's own bundle must not matter here

	t.Run("without the CA", func(t *testing.T) {
		s, err := newStore(t.Context(), testOptions(srv), noRetry)
		if err != nil {
			t.Fatal(err)
		}
		err = s.EnsureBucket(t.Context())
		if err == nil {
			t.Fatal("a server with an untrusted certificate was accepted")
		}
		if !isCertificateError(err) {
			t.Fatalf("want a certificate error, got %v", err)
		}
	})

	t.Run("ca_file", func(t *testing.T) {
		s := testStore(t, srv, BucketOptions{}, func(o *Options) { o.CAFile = srv.CAFile })
		data := bytes.Repeat([]byte("encrypted in transit "), 1000)
		if _, err := s.Put(t.Context(), "a/b", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(t.Context(), "a/b")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get returned %d bytes (err %v), want the %d put", len(got), err, len(data))
		}
	})

	t.Run("AWS_CA_BUNDLE with an unrelated ca_file", func(t *testing.T) {
		// The CA in AWS_CA_BUNDLE is still trusted when ca_file names
		// another: ca_file adds to the trusted roots, it does not replace.
		t.Setenv(envCABundle, srv.CAFile)
		other, _, _, err := testenv.NewCertificates("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		otherFile := filepath.Join(t.TempDir(), "other.pem")
		if err := os.WriteFile(otherFile, other, 0o600); err != nil {
			t.Fatal(err)
		}
		testStore(t, srv, BucketOptions{}, func(o *Options) { o.CAFile = otherFile })
	})
}

// tlsServer starts an https server answering 404 to everything, with the
// given TLS version range and a certificate from a fresh CA; it returns the
// server, the CA's PEM file and a count of requests that got through TLS.
func tlsServer(t *testing.T, minVersion, maxVersion uint16) (*httptest.Server, string, *atomic.Int64) {
	t.Helper()
	caPEM, certPEM, keyPEM, err := testenv.NewCertificates("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVersion, MaxVersion: maxVersion}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, &requests
}

// statOn makes a store for endpoint trusting caFile and stats a key.
func statOn(t *testing.T, endpoint, caFile string) error {
	t.Helper()
	s, err := newStore(t.Context(), Options{Endpoint: endpoint, Bucket: "b", PathStyle: true,
		AccessKeyID: "a", SecretAccessKey: "s", CAFile: caFile}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(t.Context(), "k")
	return err
}

// TestTLSOldVersionsRefused: a server that speaks TLS 1.1 at most gets no
// request, although its certificate is trusted; the same server allowing
// TLS 1.2 works.
func TestTLSOldVersionsRefused(t *testing.T) {
	t.Setenv(envCABundle, "")
	old, oldCA, oldRequests := tlsServer(t, tls.VersionTLS10, tls.VersionTLS11)
	err := statOn(t, old.URL, oldCA)
	if err == nil || errors.Is(err, storage.ErrNotExist) || oldRequests.Load() != 0 {
		t.Fatalf("TLS 1.1 server: %d requests reached it, error %v; want a refused handshake", oldRequests.Load(), err)
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("error %q does not say the protocol version was refused", err)
	}

	ok, okCA, _ := tlsServer(t, tls.VersionTLS12, tls.VersionTLS12)
	if err := statOn(t, ok.URL, okCA); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("TLS 1.2 server: %v, want the server's 404 as ErrNotExist", err)
	}
}

// envSystemRootsChild marks the child process of TestTLSKeepsSystemRoots;
// its value is the endpoint to reach.
const envSystemRootsChild = "COFFER_TEST_SYSTEM_ROOTS_ENDPOINT"

// TestTLSKeepsSystemRoots: with ca_file set, servers whose certificates
// chain to the system roots are still trusted. The system roots are made
// a test CA (SSL_CERT_FILE) in a child process, since Go reads them once.
func TestTLSKeepsSystemRoots(t *testing.T) {
	if endpoint := os.Getenv(envSystemRootsChild); endpoint != "" {
		// Child: ca_file names an unrelated CA; the server's CA is a
		// "system" root.
		if err := statOn(t, endpoint, os.Getenv("COFFER_TEST_UNRELATED_CA")); !errors.Is(err, storage.ErrNotExist) {
			t.Fatalf("server signed by a system root: %v, want the server's 404 as ErrNotExist", err)
		}
		return
	}
	srv, systemCA, requests := tlsServer(t, tls.VersionTLS12, 0)
	unrelated, _, _, err := testenv.NewCertificates("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	unrelatedFile := filepath.Join(t.TempDir(), "unrelated.pem")
	if err := os.WriteFile(unrelatedFile, unrelated, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSKeepsSystemRoots$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envSystemRootsChild+"="+srv.URL,
		"COFFER_TEST_UNRELATED_CA="+unrelatedFile,
		"SSL_CERT_FILE="+systemCA,
		"SSL_CERT_DIR="+t.TempDir(),
		envCABundle+"=",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if requests.Load() == 0 {
		t.Fatalf("the child never reached the server:\n%s", out)
	}
}

// TestCAFileErrors: a missing or empty CA bundle fails New, naming the
// file, before anything is sent.
func TestCAFileErrors(t *testing.T) {
	t.Setenv(envCABundle, "")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, pem.EncodeToMemory(&pem.Block{Type: "NOTHING", Bytes: []byte("x")}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		_, err := New(t.Context(), Options{Endpoint: "https://127.0.0.1:1", Bucket: "b", CAFile: f})
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("CAFile %s: error %v, want one naming the file", f, err)
		}
	}
	t.Setenv(envCABundle, notPEM)
	if _, err := New(t.Context(), Options{Endpoint: "https://127.0.0.1:1", Bucket: "b"}); err == nil || !strings.Contains(err.Error(), notPEM) {
		t.Errorf("AWS_CA_BUNDLE without certificates: error %v, want one naming the file", err)
	}
}
