package restore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// signedBackup takes one backup of data to a primary and an offsite
// directory store.
func signedBackup(t *testing.T, signer *sign.Signer, data []byte) (*age.X25519Identity, []storage.Destination, *manifest.Manifest) {
	t.Helper()
	id := backuptest.NewIdentity(t)
	dests := backuptest.LocalDestinations(t, "primary", "offsite")
	return id, dests, backuptest.Backup(t, dests, id.Recipient().String(), signer, data)
}

func get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, s storage.Store, key string, b []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedManifestFallsBack: a primary manifest signed by another key,
// or edited after signing, is refused with a message naming it, and the
// restore is served by the offsite copy; with both copies bad the restore
// fails with a *manifest.SignatureError, unless signatures are skipped,
// which reads it with a warning naming each manifest.
func TestRefusedManifestFallsBack(t *testing.T) {
	signer := signtest.NewSigner()
	trust := signtest.Trust(signer)
	data := bytes.Repeat([]byte("lesson,pupil,teacher\n"), 5000)
	ident, dests, m := signedBackup(t, signer, data)
	key := manifest.Key("app", m.ID)
	good := get(t, dests[0].Store, key)
	forged, err := m.Sign(signtest.NewSigner())
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(good, []byte(m.Plain.SHA256), []byte(strings.Repeat("0", 64)), 1)

	run := func(trust manifest.Trust) (*restore.Report, []byte, error) {
		out := filepath.Join(t.TempDir(), "restored")
		rep, err := restore.Run(context.Background(), restore.Request{Job: "app", Destinations: dests, Identities: []age.Identity{ident}, Trust: trust},
			func(dumpinfo.Info) (snapshot.Loader, error) { return restore.FileLoader(out, false), nil }, zaptest.NewLogger(t))
		got, _ := os.ReadFile(out)
		return rep, got, err
	}
	for name, c := range map[string]struct {
		object []byte
		want   string
	}{
		"other key": {forged, key + " on primary: signature: signed by an unknown key"},
		"edited":    {edited, key + " on primary: signature: bad signature by key " + signer.Public().ID()},
	} {
		t.Run(name, func(t *testing.T) {
			put(t, dests[0].Store, key, c.object)
			rep, got, err := run(trust)
			if err != nil || rep.ServedBy != "offsite" || !bytes.Equal(got, data) {
				t.Fatalf("restore: %+v, %v; want the right data from offsite", rep, err)
			}
			// The refused manifest is not tried at all: it is named as
			// not used, with its reason.
			if len(rep.Attempts) != 1 || len(rep.Untrusted) != 1 || !strings.Contains(key+" on primary: "+rep.Untrusted[0].Reason, c.want) {
				t.Fatalf("attempts %+v, untrusted %+v; want only offsite tried and the primary's key named with %q", rep.Attempts, rep.Untrusted, c.want)
			}
			checks, err := restore.Verify(context.Background(), "app", "", dests, nil, trust)
			if err != nil || len(checks) != 2 || checks[0].OK || !strings.Contains(checks[0].Error, c.want) || !checks[1].OK {
				t.Fatalf("verify: %+v, %v; want primary failed with %q, offsite ok", checks, err, c.want)
			}
			if checks[1].SignedBy != signer.Public().ID() || checks[1].Sequence != 1 {
				t.Errorf("offsite check: signed by %q, seq %d", checks[1].SignedBy, checks[1].Sequence)
			}
		})
	}

	put(t, dests[0].Store, key, forged)
	put(t, dests[1].Store, key, forged)
	rep, _, err := run(trust)
	if !errors.Is(err, restore.ErrNoBackup) || !strings.Contains(err.Error(), "signed by an unknown key") || len(rep.Untrusted) != 2 {
		t.Fatalf("restore with both manifests bad: %v (untrusted %+v), want no backup, naming both refused keys", err, rep.Untrusted)
	}
	var warned []string
	skip := trust
	skip.SkipSignature = true
	skip.Warn = func(object string, _ error) { warned = append(warned, object) }
	rep, got, err := run(skip)
	if err != nil || rep.ServedBy != "primary" || !bytes.Equal(got, data) {
		t.Fatalf("restore skipping signatures: %+v, %v", rep, err)
	}
	slices.Sort(warned)
	if len(warned) != 2 || warned[0] != key+" on offsite" || warned[1] != key+" on primary" {
		t.Fatalf("warnings %v, want one naming each manifest read", warned)
	}
}
