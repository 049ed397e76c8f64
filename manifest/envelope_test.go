package manifest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/storage/fs"
)

var update = flag.Bool("update", false, "rewrite testdata/v2-signed.json")

// manifestPart returns the bytes of the "manifest" value of an envelope,
// as stored.
func manifestPart(t *testing.T, data []byte) []byte {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	return env.Manifest
}

// TestSignatureCoversStoredBytes: verification is over the manifest's
// bytes as stored. Any changed byte of it is refused, and so is the same
// manifest re-indented (equal JSON, other bytes); the envelope around it
// is not signed and may change.
func TestSignatureCoversStoredBytes(t *testing.T) {
	good, err := sample().Sign(testSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good, testTrust); err != nil {
		t.Fatal(err)
	}
	part := manifestPart(t, good)
	at := bytes.Index(good, part)
	if at < 0 {
		t.Fatal("the manifest part is not stored verbatim")
	}
	refused := func(name string, data []byte, want error) {
		t.Helper()
		_, err := Decode(data, testTrust)
		var se *SignatureError
		if !errors.As(err, &se) || !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want a signature error wrapping %v", name, err, want)
		}
	}
	flipped := 0
	for i := range part {
		bad := bytes.Clone(good)
		bad[at+i] ^= 0x01
		if !json.Valid(bad) {
			continue // a change the JSON parser refuses before any signature check
		}
		refused("byte flipped", bad, sign.ErrBadSignature)
		flipped++
	}
	if flipped < len(part)/2 {
		t.Errorf("only %d of %d bytes could be flipped into valid JSON", flipped, len(part))
	}
	var reindented bytes.Buffer
	if err := json.Indent(&reindented, part, "", "\t"); err != nil {
		t.Fatal(err)
	}
	refused("re-indented", bytes.Replace(good, part, reindented.Bytes(), 1), sign.ErrBadSignature)
	var compact bytes.Buffer
	json.Compact(&compact, part)
	refused("compacted", bytes.Replace(good, part, compact.Bytes(), 1), sign.ErrBadSignature)

	other, err := sign.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	resigned, err := seal(part, other.Sign(part))
	if err != nil {
		t.Fatal(err)
	}
	refused("signed by another key", resigned, sign.ErrUnknownKey)
	var env map[string]json.RawMessage
	json.Unmarshal(good, &env)
	delete(env, "signature")
	nosig, _ := json.Marshal(env)
	_, err = Decode(nosig, testTrust)
	if err == nil || !strings.Contains(err.Error(), "signature: missing") {
		t.Errorf("no signature: err = %v", err)
	}

	// The envelope's own whitespace is not signed.
	if _, err := Decode(bytes.ReplaceAll(good, []byte("\n}\n"), []byte("}")), testTrust); err != nil {
		t.Errorf("envelope whitespace changed: %v", err)
	}
}

// TestSkipSignature: a format 1 manifest, or one whose signature fails,
// is refused unless the reader skips signatures; then it is accepted, Warn
// names it, and it is not marked as signed. Malformed manifests are
// refused even then.
func TestSkipSignature(t *testing.T) {
	v1 := sample()
	v1.FormatVersion, v1.Sequence = 1, 0
	legacy, err := jsonOf(v1)
	if err != nil {
		t.Fatal(err)
	}
	stranger := Trust{Verifier: sign.NewVerifier()}
	good, _ := sample().Sign(testSigner)

	type warning struct {
		object string
		err    error
	}
	for name, c := range map[string]struct {
		data  []byte
		trust Trust
		want  error
	}{
		"format 1":    {legacy, testTrust, ErrUnsigned},
		"unknown key": {good, stranger, sign.ErrUnknownKey},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(c.data, c.trust)
			if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "manifest: signature: ") {
				t.Fatalf("strict: err = %v, want %v", err, c.want)
			}
			var warned []warning
			skip := c.trust
			skip.SkipSignature = true
			skip.Warn = func(object string, err error) { warned = append(warned, warning{object, err}) }
			m, err := Decode(c.data, skip)
			if err != nil {
				t.Fatalf("with SkipSignature: %v", err)
			}
			if m.Job != v1.Job || m.SignedBy != "" {
				t.Fatalf("decoded %s, SignedBy %q", m.ID, m.SignedBy)
			}
			if len(warned) != 1 || warned[0].object != "manifest" || !errors.Is(warned[0].err, c.want) {
				t.Fatalf("warnings %v, want one for the manifest", warned)
			}
		})
	}
	warned := 0
	skip := Trust{SkipSignature: true, Warn: func(string, error) { warned++ }}
	if _, err := Decode([]byte(`{"format_version": 1, "id": "x"}`), skip); err == nil || warned != 0 {
		t.Errorf("malformed format 1 with SkipSignature: err %v, %d warnings; want refused, none", err, warned)
	}
	if m, err := Decode(good, Trust{Verifier: testTrust.Verifier, SkipSignature: true, Warn: func(string, error) { warned++ }}); err != nil || warned != 0 || m.SignedBy == "" {
		t.Errorf("good signature with SkipSignature: %v, %d warnings, SignedBy %q", err, warned, m.SignedBy)
	}
}

// TestStoredVectors: manifests in testdata written by earlier versions
// stay readable (the compatibility promise): a signed format 2 manifest
// with its key, a format 1 manifest with signatures skipped.
func TestStoredVectors(t *testing.T) {
	if *update {
		m := sample()
		m.ID = "20261123T020000.000Z-7f3a"
		m.Payload.Key = PayloadKey(m.Job, m.ID, m.Source.Format)
		m.Copies[0].Key = m.Payload.Key
		m.CofferVersion, m.Host = "v0.4.0", "db-backup-1"
		data, err := m.Sign(testSigner)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/v2-signed.json", data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := os.ReadFile("testdata/v2-signed.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(v2, testTrust)
	if err != nil || m.Sequence != 7 || m.SignedBy != testSigner.Public().ID() {
		t.Fatalf("v2-signed.json: %+v, %v", m, err)
	}
	v1, err := os.ReadFile("testdata/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(v1, testTrust); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("v1.json read strictly: %v, want ErrUnsigned", err)
	}
	if m, err := Decode(v1, Trust{SkipSignature: true}); err != nil || m.FormatVersion != 1 || len(m.Copies) != 2 {
		t.Fatalf("v1.json with SkipSignature: %+v, %v", m, err)
	}
}

// TestReadNamesObject: Read's signature errors name the object and the
// destination; WriteCopy stores the manifest read, byte for byte, and the
// copy reads back at the other destination.
func TestReadNamesObject(t *testing.T) {
	ctx := context.Background()
	primary, _ := fs.New(t.TempDir())
	offsite, _ := fs.New(t.TempDir())
	m := sample()
	if err := Write(ctx, primary, m, testSigner); err != nil {
		t.Fatal(err)
	}
	if err := Write(ctx, primary, m, testSigner); err == nil {
		t.Fatal("a second Write replaced the manifest")
	}
	if err := Write(ctx, primary, m, nil); err == nil || !strings.Contains(err.Error(), "no signing key") {
		t.Fatalf("Write without a key: %v", err)
	}
	_, err := Read(ctx, primary, "primary", m.Job, m.ID, Trust{Verifier: sign.NewVerifier()})
	want := Key(m.Job, m.ID) + " on primary: signature: signed by an unknown key " + testSigner.Public().ID()
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want it to start with %q", err, want)
	}
	got, err := Read(ctx, primary, "primary", m.Job, m.ID, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCopy(ctx, offsite, got); err != nil {
		t.Fatal(err)
	}
	a, b := readAll(t, primary, Key(m.Job, m.ID)), readAll(t, offsite, Key(m.Job, m.ID))
	if !bytes.Equal(a, b) {
		t.Fatal("WriteCopy changed the manifest's bytes")
	}
	if c, err := Read(ctx, offsite, "offsite", m.Job, m.ID, testTrust); err != nil || c.SignedBy == "" {
		t.Fatalf("the copy at offsite: %v", err)
	}
	if err := WriteCopy(ctx, offsite, sample()); err == nil {
		t.Fatal("WriteCopy of a manifest never read succeeded")
	}
	if _, err := Read(ctx, primary, "primary", m.Job, NewID(m.Started), testTrust); err == nil {
		t.Fatal("read a manifest that does not exist")
	}
}

func readAll(t *testing.T, s *fs.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	b.ReadFrom(rc)
	return b.Bytes()
}
