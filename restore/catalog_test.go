package restore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// plantedKey is a manifest key an attacker with write access to a bucket
// can put there: the newest id there can be, any content.
const plantedKey = "app/29991231T235959.999Z-0000/manifest.json"

// TestPlantedAndForgedKeysAreNeverChosen takes two real backups to two
// local directories, then plants a far-future manifest key (garbage) on
// the primary and a newer, whole backup whose manifest is signed by a key
// nobody trusts on the offsite. Restore and verify of "the newest" must
// use the second real backup, try nothing from the planted keys, and name
// both keys as not used, with their reasons.
func TestPlantedAndForgedKeysAreNeverChosen(t *testing.T) {
	signer := signtest.NewSigner()
	trust := signtest.Trust(signer)
	ident, dests, _ := signedBackup(t, signer, []byte("first\n"))
	second := bytes.Repeat([]byte("lesson,pupil,teacher\n"), 3000)
	m2 := backuptest.Backup(t, dests, ident.Recipient().String(), signer, second)

	put(t, dests[0].Store, plantedKey, []byte(`{"format_version":2}`))
	forgedID := manifest.NewID(time.Date(2999, 12, 30, 0, 0, 0, 0, time.UTC))
	forged := *m2
	forged.ID = forgedID
	forged.Payload.Key = manifest.PayloadKey("app", forgedID, forged.Source.Format)
	forged.Copies = []manifest.Copy{m2.Copies[0]}
	forged.Copies[0].Key = forged.Payload.Key
	put(t, dests[1].Store, forged.Payload.Key, get(t, dests[1].Store, m2.Payload.Key))
	obj, err := forged.Sign(signtest.NewSigner())
	if err != nil {
		t.Fatal(err)
	}
	put(t, dests[1].Store, manifest.Key("app", forgedID), obj)

	out := filepath.Join(t.TempDir(), "restored")
	rep, err := restore.Run(context.Background(), restore.Request{Job: "app", Destinations: dests, Identities: []age.Identity{ident}, Trust: trust},
		func(dumpinfo.Info) (snapshot.Loader, error) { return restore.FileLoader(out, false), nil }, zaptest.NewLogger(t))
	if err != nil || rep.ID != m2.ID || rep.ServedBy != "primary" {
		t.Fatalf("restore of the newest: %+v, %v; want %s from primary", rep, err, m2.ID)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, second) {
		t.Fatalf("restored %d bytes, want the second backup's %d", len(got), len(second))
	}
	for _, a := range rep.Attempts {
		if strings.Contains(a.Error, "2999") {
			t.Errorf("attempt %+v used a planted key", a)
		}
	}
	wantUntrusted(t, rep.Untrusted, []manifest.Untrusted{
		{Destination: "offsite", Key: manifest.Key("app", forgedID), ID: forgedID, Reason: "signature: signed by an unknown key"},
		{Destination: "primary", Key: plantedKey, ID: "29991231T235959.999Z-0000"},
	})

	checks, err := restore.Verify(context.Background(), "app", "", dests, nil, trust)
	if err != nil || len(checks) != 2 || !checks[0].OK || !checks[1].OK || checks[0].ID != m2.ID {
		t.Fatalf("verify of the newest: %+v, %v; want %s ok on both", checks, err, m2.ID)
	}
	if len(checks[0].Untrusted) != 1 || checks[0].Untrusted[0].Key != plantedKey ||
		len(checks[1].Untrusted) != 1 || checks[1].Untrusted[0].ID != forgedID {
		t.Fatalf("verify lists untrusted %+v and %+v; want the planted key on primary, the forged one on offsite", checks[0].Untrusted, checks[1].Untrusted)
	}

	// Asked for by id, the forged backup is refused with its reason.
	if _, err := restore.Verify(context.Background(), "app", forgedID, dests, nil, trust); err == nil ||
		!strings.Contains(err.Error(), "signed by an unknown key") {
		t.Fatalf("verify of the forged id: %v, want not found, naming the signature", err)
	}
}

// wantUntrusted compares got with want by destination, key and id, and
// checks that each reason starts with want's (any, when empty).
func wantUntrusted(t *testing.T, got, want []manifest.Untrusted) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("untrusted %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Destination != w.Destination || g.Key != w.Key || g.ID != w.ID || g.Reason == "" || !strings.HasPrefix(g.Reason, w.Reason) {
			t.Errorf("untrusted[%d] = %+v, want %+v", i, g, w)
		}
	}
}
