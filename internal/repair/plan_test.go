package repair

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

func TestPlanNewestFirstBounded(t *testing.T) {
	dests := []storage.Destination{{Name: "primary"}, {Name: "offsite"}, {Name: "tape"}}
	cat := &manifest.Catalog{Backups: []manifest.Backup{ // oldest first, as ReadCatalog returns them
		{ID: "a", Destinations: []string{"primary"}},
		{ID: "b", Destinations: []string{"primary", "offsite", "tape"}},
		{ID: "c", Destinations: []string{"offsite", "primary"}},
		{ID: "d", Destinations: []string{"tape"}},
	}}
	type step struct{ id, to, from string }
	tests := []struct {
		name string
		max  int
		want []step
	}{
		{"all", 0, []step{
			{"d", "primary", "tape"}, {"d", "offsite", "tape"},
			{"c", "tape", "primary,offsite"},
			{"a", "offsite", "primary"}, {"a", "tape", "primary"},
		}},
		{"bounded", 3, []step{{"d", "primary", "tape"}, {"d", "offsite", "tape"}, {"c", "tape", "primary,offsite"}}},
		{"one", 1, []step{{"d", "primary", "tape"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []step
			for _, tk := range plan(cat, dests, tt.max) {
				var from []string
				for _, s := range tk.sources {
					from = append(from, s.Name)
				}
				got = append(got, step{tk.id, tk.target.Name, strings.Join(from, ",")})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan = %v\nwant   %v", got, tt.want)
			}
		})
	}
}

func TestPlanNothingMissing(t *testing.T) {
	dests := []storage.Destination{{Name: "primary"}, {Name: "offsite"}}
	cat := &manifest.Catalog{Backups: []manifest.Backup{{ID: "a", Destinations: []string{"primary", "offsite"}}}}
	if got := plan(cat, dests, 0); len(got) != 0 {
		t.Fatalf("plan = %+v, want nothing to copy", got)
	}
}

// TestPlanHealsAndReplaces: a destination holding a backup's verified
// manifest without its whole payload is healed, one holding an untrusted
// key for it gets the key replaced; both from the destinations that hold
// the backup whole.
func TestPlanHealsAndReplaces(t *testing.T) {
	dests := []storage.Destination{{Name: "primary"}, {Name: "offsite"}, {Name: "tape"}}
	cat := &manifest.Catalog{
		Backups:    []manifest.Backup{{ID: "a", Destinations: []string{"primary"}}},
		Incomplete: []manifest.Incomplete{{Destination: "offsite", ID: "a", Reason: "payload app/a/x is missing"}},
		Untrusted:  []manifest.Untrusted{{Destination: "tape", ID: "a", Key: "app/a/manifest.json", Reason: "signature: bad"}},
	}
	var got []string
	for _, tk := range plan(cat, dests, 0) {
		got = append(got, tk.action+" "+tk.id+" to "+tk.target.Name+" from "+tk.sources[0].Name+": "+tk.reason)
	}
	want := []string{"heal a to offsite from primary: payload app/a/x is missing", "replace a to tape from primary: signature: bad"}
	if !slices.Equal(got, want) {
		t.Fatalf("plan = %q\nwant   %q", got, want)
	}
}

func TestCheckedReaderRefusesEOFOnMismatch(t *testing.T) {
	data := bytes.Repeat([]byte("payload "), 10_000)
	sum := sha256.Sum256(data)
	good := manifest.Digest{Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	flipped := slices.Clone(data)
	flipped[len(flipped)/2] ^= 1

	tests := []struct {
		name string
		in   []byte
		want string // "" for a clean EOF
	}{
		{"intact", data, ""},
		{"flipped byte", flipped, "payload SHA-256"},
		{"truncated", data[:len(data)-1], "payload size"},
		{"longer", append(slices.Clone(data), 'x'), "payload size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecked(bytes.NewReader(tt.in), "primary", good)
			got, err := io.ReadAll(c)
			if tt.want == "" {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("ReadAll = %d bytes, %v; want the payload and EOF", len(got), err)
				}
				return
			}
			var me *mismatchError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadAll error = %v, want a %s mismatch", err, tt.want)
			}
			if c.mismatch == nil || c.readErr != nil {
				t.Fatalf("mismatch %v, readErr %v: the failure must be blamed on the payload", c.mismatch, c.readErr)
			}
		})
	}
}
