package open_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// TestS3CAFile: a destination's ca_file reaches the store: an https server
// with a certificate from a private CA (in no system trust store) is
// reached, and answers 404 (ErrNotExist).
func TestS3CAFile(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	caPEM, certPEM, keyPEM, err := testenv.NewCertificates("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	// Without the CA the handshake fails (storage/s3's tests show it);
	// not repeated here, where the SDK's retries would make it slow.
	s, err := open.Store(t.Context(), &config.Destination{Name: "private", Type: "s3", Endpoint: srv.URL,
		Bucket: "b", PathStyle: true, AccessKeyID: "a", SecretAccessKey: config.NewSecret("s"), CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "k"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("with ca_file: %v, want the server's 404 as ErrNotExist", err)
	}
}

// TestWarnPlainHTTP: one warning per plain-HTTP destination in use, naming
// it; https and local destinations, and destinations of other jobs, get
// none.
func TestWarnPlainHTTP(t *testing.T) {
	cfg := &config.Config{
		Destinations: map[string]*config.Destination{
			"minio":  {Name: "minio", Type: "s3", Endpoint: "http://127.0.0.1:9000", InsecureHTTP: true},
			"aws":    {Name: "aws", Type: "s3", Endpoint: "https://s3.example.com"},
			"disk":   {Name: "disk", Type: "local", Path: "/b"},
			"minio2": {Name: "minio2", Type: "s3", Endpoint: "http://127.0.0.1:9001", InsecureHTTP: true},
		},
		DestinationOrder: []string{"minio", "aws", "disk", "minio2"},
	}
	app := &config.Job{Name: "app", Destinations: []string{"aws", "minio", "disk"}}
	other := &config.Job{Name: "other", Destinations: []string{"minio", "minio2"}}

	for _, tc := range []struct {
		name string
		jobs []*config.Job
		want []string
	}{
		{"every destination", nil, []string{"minio", "minio2"}},
		{"one job", []*config.Job{app}, []string{"minio"}},
		{"jobs sharing a destination", []*config.Job{app, other}, []string{"minio", "minio2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			open.WarnPlainHTTP(zap.New(core), cfg, tc.jobs...)
			var got []string
			for _, e := range logs.All() {
				if e.Level != zap.WarnLevel {
					t.Errorf("logged at %s, want warn", e.Level)
				}
				name, _ := e.ContextMap()["destination"].(string)
				if want := "destination " + name + " uses plain HTTP: credentials and data travel unencrypted"; e.Message != want {
					t.Errorf("message %q, want %q", e.Message, want)
				}
				got = append(got, name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("warned about %v, want %v", got, tc.want)
			}
		})
	}
}
