package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// transportDir returns a directory holding ca.pem (a CA certificate),
// key.pem (a certificate followed by its private key) and junk.pem (not
// PEM), and the private key's PEM text.
func transportDir(t *testing.T) (dir, key string) {
	t.Helper()
	caPEM, certPEM, keyPEM, err := testenv.NewCertificates("s3.internal")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	writeFile(t, dir, "ca.pem", string(caPEM), 0o644)
	writeFile(t, dir, "key.pem", string(certPEM)+string(keyPEM), 0o600)
	writeFile(t, dir, "junk.pem", "not a certificate\n", 0o644)
	return dir, string(keyPEM)
}

// TestTransportBad: plain HTTP needs insecure_http, insecure_http needs
// plain HTTP, and ca_file must be a readable bundle of certificates; each
// message names the field and says what to do.
func TestTransportBad(t *testing.T) {
	dir, key := transportDir(t)
	keyLine := strings.Split(key, "\n")[1] // a line of the private key's base64
	for _, tc := range []struct {
		name, dest string
		want       string
	}{
		{"http without insecure_http", `{type: s3, bucket: b, endpoint: "http://127.0.0.1:9000"}`,
			"coffer.yaml:3: destinations.d.endpoint: http:// sends credentials and backups unencrypted; use https://, or set insecure_http: true"},
		{"HTTP in capitals", `{type: s3, bucket: b, endpoint: "HTTP://minio:9000"}`,
			"destinations.d.endpoint: http:// sends credentials"},
		{"insecure_http with https", `{type: s3, bucket: b, endpoint: "https://s3.example.com", insecure_http: true}`,
			"coffer.yaml:3: destinations.d.insecure_http: only allows an http:// endpoint"},
		{"insecure_http on AWS", `{type: s3, bucket: b, insecure_http: true}`,
			"destinations.d.insecure_http: only allows an http:// endpoint"},
		{"insecure_http not a bool", `{type: s3, bucket: b, endpoint: "http://minio:9000", insecure_http: yes}`,
			`destinations.d.insecure_http: want true or false, got a string "yes"`},
		{"endpoint with credentials", `{type: s3, bucket: b, endpoint: "https://AKIA:hunter2@s3.example.com"}`,
			"destinations.d.endpoint: must not hold credentials"},
		{"missing ca_file", `{type: s3, bucket: b, ca_file: nope.pem}`,
			"coffer.yaml:3: destinations.d.ca_file: cannot read CA bundle: open " + filepath.Join(dir, "nope.pem")},
		{"ca_file not PEM", `{type: s3, bucket: b, ca_file: junk.pem}`,
			"destinations.d.ca_file: " + filepath.Join(dir, "junk.pem") + " holds no PEM certificate"},
		{"ca_file with a private key", `{type: s3, bucket: b, ca_file: key.pem}`,
			"destinations.d.ca_file: " + filepath.Join(dir, "key.pem") + " holds a private key"},
		{"ca_file with plain HTTP", `{type: s3, bucket: b, endpoint: "http://minio:9000", insecure_http: true, ca_file: ca.pem}`,
			"destinations.d.ca_file: not used with an http:// endpoint"},
		{"ca_file on a local destination", `{type: local, path: /b, ca_file: ca.pem}`,
			"destinations.d.ca_file: not used by local destinations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "recipients: [" + testRecipient + "]\ndestinations:\n  d: " + tc.dest + "\njobs:\n  app:\n    source: {type: sqlite, path: /db}\n"
			_, err := Parse(filepath.Join(dir, "coffer.yaml"), []byte(src))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Join(dir, "coffer.yaml"), "coffer.yaml")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error lacks %q; got:\n%s", tc.want, msg)
			}
			if n := len(FieldErrors(err)); n != 1 {
				t.Errorf("%d problems, want 1:\n%s", n, msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, keyLine) {
				t.Errorf("error shows a secret:\n%s", msg)
			}
		})
	}
}

// TestTransportGood: an http endpoint with insecure_http and an https one
// with a ca_file relative to the configuration file load, the ca_file as
// an absolute path.
func TestTransportGood(t *testing.T) {
	dir, _ := transportDir(t)
	path := writeFile(t, dir, "coffer.yaml", "recipients: ["+testRecipient+"]\ndestinations:\n"+
		"  local-minio: {type: s3, bucket: b, endpoint: \"http://127.0.0.1:9000\", insecure_http: true}\n"+
		"  private: {type: s3, bucket: b, endpoint: \"https://s3.internal\", ca_file: ca.pem}\n"+
		"jobs:\n  app:\n    source: {type: sqlite, path: /db}\n", 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Destinations["local-minio"]; !d.InsecureHTTP || d.CAFile != "" {
		t.Errorf("local-minio: insecure_http %v, ca_file %q", d.InsecureHTTP, d.CAFile)
	}
	if d := c.Destinations["private"]; d.InsecureHTTP || d.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("private: insecure_http %v, ca_file %q, want %s", d.InsecureHTTP, d.CAFile, filepath.Join(dir, "ca.pem"))
	}
}
