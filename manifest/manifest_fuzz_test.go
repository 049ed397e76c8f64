package manifest

import (
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode, as a restore does with
// whatever object a bucket returns. Decode must never panic. What it
// accepts with a trusted key must be valid and signed by that key, and
// signing it again gives an object that decodes to the same manifest.
// Skipping signatures only ever accepts more, never a manifest that fails
// Validate.
func FuzzDecode(f *testing.F) {
	valid, err := sample().Sign(testSigner)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	v1 := sample()
	v1.FormatVersion, v1.Sequence = 1, 0
	if legacy, err := jsonOf(v1); err == nil {
		f.Add(legacy)
	}
	f.Add([]byte(`{"format_version": 1}`))
	f.Add([]byte(`{"format_version": 2}`))
	f.Add([]byte(`{"format_version": 2, "manifest": {"format_version": 2}, "signature": {"alg": "ed25519", "key_id": "00000000", "value": ""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		skip := Trust{Verifier: testTrust.Verifier, SkipSignature: true}
		loose, looseErr := Decode(data, skip)
		if looseErr == nil {
			if err := loose.Validate(); err != nil {
				t.Fatalf("Decode with SkipSignature accepted a manifest that fails Validate: %v", err)
			}
		}
		m, err := Decode(data, testTrust)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned a manifest together with error %v", err)
			}
			return
		}
		if looseErr != nil {
			t.Fatalf("accepted with a trusted key, refused with SkipSignature: %v", looseErr)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Decode accepted a manifest that fails Validate: %v", err)
		}
		if m.SignedBy != testSigner.Public().ID() {
			t.Fatalf("accepted manifest SignedBy = %q", m.SignedBy)
		}
		enc, err := m.Sign(testSigner)
		if err != nil {
			t.Fatalf("accepted manifest does not sign: %v", err)
		}
		back, err := Decode(enc, testTrust)
		if err != nil {
			t.Fatalf("re-signed manifest is refused: %v\n%s", err, enc)
		}
		m.stored, back.stored = nil, nil
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("re-signed manifest decodes to another value:\n first %+v\nsecond %+v", m, back)
		}
	})
}
