package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/coffer-backup/coffer/crypto/keyfile"
)

func newKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Recipient().String()
}

func seal(t *testing.T, plain []byte, recipients ...string) ([]byte, string) {
	t.Helper()
	rs, err := ParseRecipients(recipients)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := Encrypt(&buf, rs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.HeaderSHA256()
}

func TestRoundTripAndHeaderHash(t *testing.T) {
	id, rcpt := newKey(t)
	_, other := newKey(t)
	plain := make([]byte, 300_000) // several 64 KiB chunks
	rand.Read(plain)
	ct, hdr := seal(t, plain, rcpt, other)

	got, err := HeaderSHA256(bytes.NewReader(ct))
	if err != nil || got != hdr {
		t.Fatalf("HeaderSHA256 = %s, %v; Encrypt recorded %s", got, err, hdr)
	}
	r, err := Decrypt(bytes.NewReader(ct), []age.Identity{id}, []string{rcpt, other}, hdr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("round trip: err %v, equal %v", err, bytes.Equal(out, plain))
	}
}

func TestDecryptRefusesBadPayloads(t *testing.T) {
	id, rcpt := newKey(t)
	plain := make([]byte, 200_000)
	rand.Read(plain)
	ct, hdr := seal(t, plain, rcpt)
	ct2, hdr2 := seal(t, plain, rcpt) // same plaintext, other file key: another backup

	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}
	cases := map[string]struct {
		payload []byte
		header  string
	}{
		"flipped body byte":   {flip(len(ct) / 2), hdr},
		"flipped last byte":   {flip(len(ct) - 1), hdr},
		"truncated":           {ct[:len(ct)-1000], hdr},
		"trailing garbage":    {append(bytes.Clone(ct), []byte("garbage")...), hdr},
		"swapped payload":     {ct2, hdr},
		"header of other one": {ct, hdr2},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Decrypt(bytes.NewReader(c.payload), []age.Identity{id}, []string{rcpt}, c.header)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatal("a bad payload decrypted without error")
			}
		})
	}
}

func TestWrongIdentityNamesRecipients(t *testing.T) {
	_, rcpt := newKey(t)
	wrong, _ := newKey(t)
	ct, hdr := seal(t, []byte("secret rows"), rcpt)
	_, err := Decrypt(bytes.NewReader(ct), []age.Identity{wrong}, []string{rcpt}, hdr)
	var we *WrongIdentityError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), rcpt) {
		t.Fatalf("err = %v, want a WrongIdentityError naming %s", err, rcpt)
	}
}

func TestParseRecipientsRefusesPrivateKey(t *testing.T) {
	id, _ := newKey(t)
	_, err := ParseRecipients([]string{id.String()})
	if err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("err = %v, want a private-key message", err)
	}
	if strings.Contains(err.Error(), id.String()) {
		t.Fatal("the error echoes the private key")
	}
}

func TestIdentityFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.txt")
	data, rcpt, err := GenerateIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Create(path, data); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Create(path, data); err == nil {
		t.Fatal("WriteSecretFile overwrote an existing key file")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := Recipients(ids); len(got) != 1 || got[0] != rcpt {
		t.Fatalf("Recipients = %v, want [%s]", got, rcpt)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadIdentities(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable identity: err = %v, want a refusal with the chmod fix", err)
	}
}

// TestPassphraseProtectedIdentity: an identity file encrypted with a
// passphrase (as `age -p` makes it, binary or armored) opens with the
// right passphrase and is refused, without a secret in the message,
// otherwise.
func TestPassphraseProtectedIdentity(t *testing.T) {
	file, recipient, err := GenerateIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, armored := range []bool{false, true} {
		sr, err := age.NewScryptRecipient("correct horse")
		if err != nil {
			t.Fatal(err)
		}
		sr.SetWorkFactor(10) // fast for the test
		var buf bytes.Buffer
		var dst io.Writer = &buf
		var aw io.WriteCloser
		if armored {
			aw = armor.NewWriter(&buf)
			dst = aw
		}
		w, err := age.Encrypt(dst, sr)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(file)
		w.Close()
		if aw != nil {
			aw.Close()
		}
		path := filepath.Join(t.TempDir(), "identity.age")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		ids, err := LoadIdentitiesWith(path, func() ([]byte, error) { return []byte("correct horse"), nil })
		if err != nil || len(Recipients(ids)) != 1 || Recipients(ids)[0] != recipient {
			t.Fatalf("armored %v: %v, %v; want the identity of %s", armored, Recipients(ids), err, recipient)
		}
		_, err = LoadIdentitiesWith(path, func() ([]byte, error) { return []byte("battery staple"), nil })
		if err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "battery") {
			t.Errorf("armored %v, wrong passphrase: %v", armored, err)
		}
		if _, err := LoadIdentities(path); err == nil || !strings.Contains(err.Error(), "--passphrase-file") {
			t.Errorf("armored %v, no passphrase source: %v", armored, err)
		}
	}
}
