package manifest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

func sample() *Manifest {
	id := NewID(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
	sum := strings.Repeat("ab", 32)
	key := PayloadKey("app", id, "pg-custom")
	return &Manifest{
		FormatVersion: FormatVersion, ID: id, Job: "app",
		Source:      dumpinfo.Info{Kind: "postgres", Database: "app", Format: "pg-custom"},
		Started:     time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC),
		Finished:    time.Date(2026, 11, 23, 2, 5, 0, 0, time.UTC),
		Plain:       Digest{Bytes: 100, SHA256: sum},
		Payload:     Payload{Key: key, Digest: Digest{Bytes: 80, SHA256: sum}, HeaderSHA256: sum},
		Compression: Compression{Algorithm: "zstd", Level: 3},
		Encryption:  Encryption{Algorithm: "age", Recipients: []string{"age1example"}},
		Copies:      []Copy{{Destination: "primary", Key: key, Bytes: 80, SHA256: sum}},
		Sequence:    7,
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	data, err := m.Sign(testSigner)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Payload != m.Payload || got.Duration() != 5*time.Minute || got.Sequence != 7 {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	if got.SignedBy != testSigner.Public().ID() {
		t.Fatalf("SignedBy = %q, want %s", got.SignedBy, testSigner.Public().ID())
	}
	if !slices.Equal(got.Copies, m.Copies) || len(got.Copies) == 0 || got.Copies[0].Destination != "primary" {
		t.Fatalf("copies %+v, want %+v", got.Copies, m.Copies)
	}
	if idt, _ := IDTime(m.ID); !idt.Equal(m.Started) {
		t.Fatalf("IDTime = %v, want %v", idt, m.Started)
	}
	if j, id, ok := ParseKey(Key(m.Job, m.ID)); !ok || j != "app" || id != m.ID {
		t.Fatalf("ParseKey(Key()) = %s %s %v", j, id, ok)
	}
}

func TestDecodeRefuses(t *testing.T) {
	cases := map[string]struct {
		edit func(m *Manifest)
		raw  string
		want string
	}{
		"future format":       {raw: `{"format_version": 99}`, want: "format_version 99"},
		"not json":            {raw: `{"format_version": 1`, want: "not valid JSON"},
		"no format":           {raw: `{"manifest": {}}`, want: "format_version 0"},
		"empty envelope":      {raw: `{"format_version": 2}`, want: "no manifest"},
		"null manifest":       {raw: `{"format_version": 2, "manifest": null}`, want: "no manifest"},
		"manifest a string":   {raw: `{"format_version": 2, "manifest": "x", "signature": null}`, want: "signature: missing"},
		"no sequence":         {edit: func(m *Manifest) { m.Sequence = 0 }, want: "sequence"},
		"inner format 1":      {edit: func(m *Manifest) { m.FormatVersion = 1 }, want: "format_version: is 1 inside a format 2"},
		"bad id":              {edit: func(m *Manifest) { m.ID = "yesterday" }, want: "id"},
		"payload of other":    {edit: func(m *Manifest) { m.Payload.Key = PayloadKey("other", m.ID, "pg-custom") }, want: "payload.key"},
		"no copies":           {edit: func(m *Manifest) { m.Copies = nil }, want: "copies"},
		"copy size differs":   {edit: func(m *Manifest) { m.Copies[0].Bytes = 1 }, want: "copies"},
		"no recipients":       {edit: func(m *Manifest) { m.Encryption.Recipients = nil }, want: "encryption"},
		"finished before":     {edit: func(m *Manifest) { m.Finished = m.Started.Add(-time.Second) }, want: "finished"},
		"malformed sha":       {edit: func(m *Manifest) { m.Plain.SHA256 = "xyz" }, want: "plain"},
		"missing header hash": {edit: func(m *Manifest) { m.Payload.HeaderSHA256 = "" }, want: "age_header"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			data := []byte(c.raw)
			if c.edit != nil {
				m := sample()
				c.edit(m)
				data = signedOf(t, m)
			}
			_, err := Decode(data, testTrust)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestIDsSortByTime checks that ids of backups taken in the same second
// still sort in the order they were taken.
func TestIDsSortByTime(t *testing.T) {
	base := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for i := range 200 {
		a, b := NewID(base.Add(time.Duration(i)*time.Millisecond)), NewID(base.Add(time.Duration(i+1)*time.Millisecond))
		if a >= b {
			t.Fatalf("NewID(%d ms) = %s does not sort before NewID(%d ms) = %s", i, a, i+1, b)
		}
	}
}
