package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// testSigner is a fixed key, so test vectors stay valid.
func testSigner(t *testing.T, seed byte) *Signer {
	t.Helper()
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	s, other := testSigner(t, 1), testSigner(t, 2)
	data := []byte(`{"id":"20261123T020000.000Z-7f3a","job":"app"}`)
	sig := s.Sign(data)
	if sig.Alg != "ed25519" || sig.KeyID != s.Public().ID() || len(sig.KeyID) != 8 {
		t.Fatalf("signature %+v", sig)
	}
	v := NewVerifier(other.Public(), s.Public())
	if err := v.Verify(data, sig); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}

	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x01
		err := v.Verify(bad, sig)
		if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), sig.KeyID) {
			t.Fatalf("byte %d flipped: err = %v, want a bad signature naming %s", i, err, sig.KeyID)
		}
	}
	if err := v.Verify(append(bytes.Clone(data), ' '), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a byte appended: err = %v, want bad signature", err)
	}

	err := NewVerifier(other.Public()).Verify(data, sig)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "signed by an unknown key "+sig.KeyID) ||
		!strings.Contains(err.Error(), other.Public().ID()) {
		t.Fatalf("unknown key: err = %v", err)
	}
	if err := (*Verifier)(nil).Verify(data, sig); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "no key is trusted") {
		t.Fatalf("nil verifier: err = %v", err)
	}

	// Another key claiming the trusted key's id is a bad signature.
	forged := other.Sign(data)
	forged.KeyID = sig.KeyID
	if err := NewVerifier(s.Public()).Verify(data, forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged key id: err = %v", err)
	}
	for name, edit := range map[string]func(*Signature){
		"alg":       func(g *Signature) { g.Alg = "rsa" },
		"value":     func(g *Signature) { g.Value = "not base64!" },
		"short":     func(g *Signature) { g.Value = base64.StdEncoding.EncodeToString([]byte("short")) },
		"hostileid": func(g *Signature) { g.KeyID = "\x1b[31mred" },
	} {
		g := sig
		edit(&g)
		err := v.Verify(data, g)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "\x1b") {
			t.Errorf("%s: message carries a control character: %q", name, err)
		}
	}
}

func TestPublicKeyText(t *testing.T) {
	s := testSigner(t, 1)
	text := s.Public().String()
	if !strings.HasPrefix(text, "coffer-sign1:") {
		t.Fatalf("public key %q", text)
	}
	k, err := ParsePublicKey(" " + text + "\n")
	if err != nil || !k.Equal(s.Public()) || k.ID() != s.Public().ID() {
		t.Fatalf("ParsePublicKey(String()) = %v, %v", k, err)
	}
	for in, want := range map[string]string{
		"-----BEGIN PRIVATE KEY-----":                    "this is a private key",
		"AGE-SECRET-KEY-1QQQQ":                           "this is a private key",
		"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqy": "age recipient",
		"ssh-ed25519 AAAA":                               "not a Coffer signing public key",
		"coffer-sign1:AAAA":                              "malformed",
		"coffer-sign1:" + strings.Repeat("A", 44):        "malformed",
	} {
		_, err := ParsePublicKey(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePublicKey(%q) = %v, want %q", in, err, want)
		}
		if err != nil && len(in) > 12 && strings.Contains(err.Error(), in) {
			t.Errorf("ParsePublicKey(%q): message repeats the input: %v", in, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	file, pub, err := GenerateKey(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte("# public key: "+pub.String()+"\n")) {
		t.Errorf("key file does not name its public key:\n%s", file)
	}
	path := filepath.Join(dir, "signing.key")
	if err := keyfile.Create(path, file); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	if err := keyfile.Create(path, file); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second write: %v, want a refusal to overwrite", err)
	}
	s, err := LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Public().Equal(pub) {
		t.Fatalf("loaded key's public key %s, generated %s", s.Public(), pub)
	}
	data := []byte("drill report")
	if err := NewVerifier(pub).Verify(data, s.Sign(data)); err != nil {
		t.Fatalf("loaded key's signature: %v", err)
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		_, err := LoadSigner(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: err = %v, want a refusal with the fix", mode, err)
		}
	}
	os.Chmod(path, 0o600)

	for name, content := range map[string]string{
		"empty":        "",
		"age identity": "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		"certificate":  "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"garbage der":  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(content), 0o600)
		_, err := LoadSigner(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want a refusal naming the file", name, err)
		} else if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("%s: message shows the file: %v", name, err)
		}
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file loaded")
	}
}

// TestOpenSSLReadsKeyFile checks the key file is standard PKCS#8: openssl
// derives the same public key from it.
func TestOpenSSLReadsKeyFile(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	file, pub, err := GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.key")
	if err := keyfile.Create(path, file); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkey", "-in", path, "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	// The DER SubjectPublicKeyInfo of an Ed25519 key ends with the key.
	if len(out) < 32 || base64.StdEncoding.EncodeToString(out[len(out)-32:]) != strings.TrimPrefix(pub.String(), PublicKeyPrefix) {
		t.Fatalf("openssl's public key %x differs from %s", out, pub)
	}
}
