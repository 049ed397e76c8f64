package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// A fixed identity and a payload encrypted to it, so that fuzz inputs and
// committed corpus entries mean the same thing on every run. Test-only: the
// key protects nothing but fuzzPayload.
const (
	fuzzSecretKey = "AGE-SECRET-KEY-18Q76A7XY5LS3Z0XVVVLLYSG7LTCJYQSPWQT7KKHN7HR5WT22XTDQXRUG4W"
	fuzzRecipient = "age1m0fmle7vz2wdck9r5wkadcztuj5tawy60yjwwu6ftcwfd8na8sdskqvc9c"
	fuzzPlain     = "coffer fuzz seed: plain dump bytes\n"
	// fuzzPayloadB64 is age(fuzzPlain) to fuzzRecipient.
	fuzzPayloadB64 = "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBMTDE3QlRzdFVIeTc3SzQyTlhISjNadCtPNFVrMEJNUTU0c3U5Zk1BbG1BCnZzeElzWWw1TGs0cGQvSHBaQXR4WENlM2tUOGFXa3JhTVdWb1F2QzI1dzgKLS0tIGdqYlRmSFdXVWowMW9zRFpmNVd0RGVJeXZXbXBKVjUvRFMvWGlFL2xidFUKhzO96m1REqoVMDVk0D6pGXK3PVUGtlxKfiwqU7YcJs5FFYMNqKLbEh2k1pJjZXaQeQ2QeTpTCn8h7QoS5Q18zlO1Zg=="
)

// fuzzFixture returns the fixed identity, the valid payload and the hash
// of its age header, as a manifest would record it.
func fuzzFixture(t testing.TB) (*age.X25519Identity, []byte, string) {
	t.Helper()
	id, err := age.ParseX25519Identity(fuzzSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(fuzzPayloadB64)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := HeaderSHA256(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return id, payload, hdr
}

// decryptAll runs Decrypt and reads the whole plaintext, as a restore does.
func decryptAll(data []byte, id age.Identity, wantHeader string) ([]byte, error) {
	r, err := Decrypt(bytes.NewReader(data), []age.Identity{id}, []string{fuzzRecipient}, wantHeader)
	if err != nil {
		if r != nil {
			return nil, errors.New("Decrypt returned a reader together with an error")
		}
		return nil, err
	}
	return io.ReadAll(r)
}

// FuzzDecrypt feeds arbitrary bytes to Decrypt as a payload whose manifest
// recorded fuzzPayload's header. Decrypt must never panic or hang, and
// whatever it accepts must carry exactly the recorded header and yield
// exactly fuzzPlain: a payload with any other header is refused.
func FuzzDecrypt(f *testing.F) {
	id, payload, wantHeader := fuzzFixture(f)
	f.Add(payload)
	f.Add(payload[:len(payload)-1])
	f.Add([]byte("age-encryption.org/v1\n-> X25519 \n--- \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: crash the worker so the input is kept.
		watchdog := time.AfterFunc(10*time.Second, func() { panic("Decrypt hung on a fuzz input") })
		defer watchdog.Stop()

		got, hdrErr := HeaderSHA256(bytes.NewReader(data))
		plain, err := decryptAll(data, id, wantHeader)
		if err != nil {
			if strings.Contains(strings.ToUpper(err.Error()), "AGE-SECRET-KEY-") {
				t.Fatalf("error reveals a secret key: %v", err)
			}
			return
		}
		if hdrErr != nil || got != wantHeader {
			t.Fatalf("accepted a payload whose header hash is %q (%v), manifest recorded %s", got, hdrErr, wantHeader)
		}
		if string(plain) != fuzzPlain {
			t.Fatalf("accepted payload decrypts to %q, want %q", plain, fuzzPlain)
		}
	})
}

// TestFlippedHeaderByteRefused flips every bit of the valid payload's age
// header in turn: each change must be refused before any plaintext is
// returned, as a replaced or corrupt payload (HeaderMismatchError) or an
// age format error, never as a wrong identity (which would send the user
// after the wrong key and stop restore from trying the next copy).
func TestFlippedHeaderByteRefused(t *testing.T) {
	id, payload, wantHeader := fuzzFixture(t)
	if plain, err := decryptAll(payload, id, wantHeader); err != nil || string(plain) != fuzzPlain {
		t.Fatalf("fixture does not decrypt: %q, %v", plain, err)
	}
	hdrLen := bytes.Index(payload, []byte("\n--- ")) + len("\n--- ")
	hdrLen += bytes.IndexByte(payload[hdrLen:], '\n') + 1
	var asWrongIdentity []int // byte offsets
	for i := range hdrLen {
		for bit := range 8 {
			data := bytes.Clone(payload)
			data[i] ^= 1 << bit
			r, err := Decrypt(bytes.NewReader(data), []age.Identity{id}, []string{fuzzRecipient}, wantHeader)
			var mismatch *HeaderMismatchError
			var wrong *WrongIdentityError
			switch {
			case err == nil:
				t.Fatalf("byte %d bit %d flipped in the header: Decrypt accepted it", i, bit)
			case r != nil:
				t.Fatalf("byte %d bit %d: a reader came back with error %v", i, bit, err)
			case errors.As(err, &wrong):
				asWrongIdentity = append(asWrongIdentity, i)
			case errors.As(err, &mismatch), strings.HasPrefix(err.Error(), "age"):
			default:
				t.Errorf("byte %d bit %d: unexpected error %v", i, bit, err)
			}
		}
	}
	if n := len(asWrongIdentity); n > 0 {
		t.Errorf("%d of %d header bit flips were refused as a wrong identity, not as a header mismatch (first at byte %d of %d)",
			n, 8*hdrLen, asWrongIdentity[0], hdrLen)
	}
}
