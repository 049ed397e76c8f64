package backup_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// TestSignedAndNumbered: every manifest a backup writes is signed by the
// job's key and numbered one above the highest sequence ReadPrior finds;
// a manifest signed by another key (a forgery with a huge sequence and
// size) changes neither the sequence nor the shrink floor.
func TestSignedAndNumbered(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary, offsite := newStore(t), newStore(t)
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}}
	ctx, log := context.Background(), zaptest.NewLogger(t)
	run := func() *manifest.Manifest {
		t.Helper()
		res, err := backup.Run(ctx, backup.Job{
			Name: "app", Signer: testSigner, Source: execSource(t, "head -c 100000 /dev/urandom"),
			Recipients: []string{rcpt}, Level: 1, Threads: 1, Destinations: dests, Trust: testTrust, MaxShrinkPercent: 50,
		}, log)
		if err != nil || res.Outcome != backup.OK {
			t.Fatalf("Run = %+v, %v", res, err)
		}
		time.Sleep(2 * time.Millisecond) // distinct, ordered ids
		return res.Manifest
	}
	first := run()
	if first.Sequence != 1 {
		t.Fatalf("first backup has sequence %d, want 1", first.Sequence)
	}
	other := signtest.NewSigner()
	for _, d := range dests {
		m, err := manifest.Read(ctx, d.Store, d.Name, "app", first.ID, testTrust)
		if err != nil || m.SignedBy != testSigner.Public().ID() || m.Sequence != 1 {
			t.Fatalf("%s: manifest %+v, %v; want sequence 1 signed by %s", d.Name, m, err, testSigner.Public().ID())
		}
		_, err = manifest.Read(ctx, d.Store, d.Name, "app", first.ID, signtest.Trust(other))
		var se *manifest.SignatureError
		if !errors.As(err, &se) || !errors.Is(err, sign.ErrUnknownKey) {
			t.Fatalf("%s: read trusting another key: %v, want an unknown-key error", d.Name, err)
		}
	}

	// A forgery: newer id, huge sequence and size, signed by another key.
	forged := *first
	forged.ID = manifest.NewID(time.Now().Add(time.Hour))
	forged.Payload.Key = manifest.PayloadKey("app", forged.ID, first.Source.Format)
	forged.Copies = []manifest.Copy{{Destination: "primary", Key: forged.Payload.Key, Bytes: first.Payload.Bytes, SHA256: first.Payload.SHA256}}
	forged.Sequence, forged.Plain.Bytes = 1000, 1<<40
	if err := manifest.Write(ctx, primary, &forged, other); err != nil {
		t.Fatal(err)
	}
	prior := backup.ReadPrior(ctx, "app", dests, testTrust, time.Minute, log)
	if prior.ID != first.ID || prior.Sequence != 1 || prior.ShrinkFloor(50) != 50000 {
		t.Fatalf("ReadPrior with a forged newest manifest = %+v, want the first backup's (seq 1, 100000 bytes)", prior)
	}
	if second := run(); second.Sequence != 2 {
		t.Fatalf("second backup has sequence %d, want 2", second.Sequence)
	}
	if third := run(); third.Sequence != 3 {
		t.Fatalf("third backup has sequence %d, want 3", third.Sequence)
	}
}

// TestUnsignedJobRefused: without a signing key nothing is dumped and
// nothing is written.
func TestUnsignedJobRefused(t *testing.T) {
	_, rcpt := newIdentity(t)
	primary := newStore(t)
	for _, tc := range []struct {
		name string
		job  backup.Job
		want string
	}{
		{"no signer", backup.Job{Name: "app"}, "no signing key"},
	} {
		j := tc.job
		j.Source, j.Recipients, j.Level, j.Threads = execSource(t, "echo data"), []string{rcpt}, 1, 1
		j.Destinations = []storage.Destination{{Name: "primary", Store: primary}}
		_, err := backup.Run(context.Background(), j, zaptest.NewLogger(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if k := backuptest.Keys(t, primary); len(k) != 0 {
			t.Fatalf("%s: primary holds %v", tc.name, k)
		}
	}
}
