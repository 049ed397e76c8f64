package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// TestPriorIgnoresPlantedKeys takes two real backups to two local
// directories, then plants on each destination more newer manifest keys
// than the old code read (3 per destination): garbage, a key naming
// another backup, and forgeries signed by an unknown key. The sequence
// and the shrink floor still come from the second real backup, so the
// next backup is numbered 3 and a dump that shrank by 90% is refused.
func TestPriorIgnoresPlantedKeys(t *testing.T) {
	_, rcpt := newIdentity(t)
	dests := []storage.Destination{{Name: "primary", Store: newStore(t)}, {Name: "offsite", Store: newStore(t)}}
	ctx, log := context.Background(), zaptest.NewLogger(t)
	run := func(size int) (*backup.Result, error) {
		t.Helper()
		res, err := backup.Run(ctx, backup.Job{
			Name: "app", Signer: testSigner, Source: execSource(t, fmt.Sprintf("head -c %d /dev/urandom", size)),
			Recipients: []string{rcpt}, Level: 1, Threads: 1, Destinations: dests, Trust: testTrust, MaxShrinkPercent: 50,
		}, log)
		time.Sleep(2 * time.Millisecond) // distinct, ordered ids
		return res, err
	}
	if _, err := run(100_000); err != nil {
		t.Fatal(err)
	}
	res, err := run(200_000)
	if err != nil || res.Manifest.Sequence != 2 {
		t.Fatalf("second backup: %+v, %v", res, err)
	}
	second := res.Manifest

	other := signtest.NewSigner()
	for i, d := range dests {
		at := func(n int) string { return manifest.NewID(time.Date(2999, 1, 1+n+10*i, 0, 0, 0, 0, time.UTC)) }
		plant(t, d.Store, manifest.Key("app", at(1)), []byte("not a manifest"))
		plant(t, d.Store, manifest.Key("app", at(2)), mustGet(t, d.Store, manifest.Key("app", second.ID)))
		for n := 3; n <= 4; n++ {
			forged := *second
			forged.ID = at(n)
			forged.Payload.Key = manifest.PayloadKey("app", forged.ID, second.Source.Format)
			forged.Copies = []manifest.Copy{{Destination: d.Name, Key: forged.Payload.Key, Bytes: second.Payload.Bytes, SHA256: second.Payload.SHA256}}
			forged.Sequence, forged.Plain.Bytes = 1, 10 // a reset sequence, no floor
			plant(t, d.Store, forged.Payload.Key, mustGet(t, d.Store, second.Payload.Key))
			if err := manifest.Write(ctx, d.Store, &forged, other); err != nil {
				t.Fatal(err)
			}
		}
	}

	prior := backup.ReadPrior(ctx, "app", dests, testTrust, time.Minute, log)
	if prior.ID != second.ID || prior.Sequence != 2 || prior.ShrinkFloor(50) != 100_000 {
		t.Fatalf("ReadPrior with 4 planted newer keys per destination = %+v (floor %d), want the second backup's (seq 2, floor 100000)", prior, prior.ShrinkFloor(50))
	}
	if _, err := run(20_000); err == nil || !strings.Contains(err.Error(), "less than 100000") {
		t.Fatalf("a dump 90%% smaller: %v, want the shrink check to refuse it", err)
	}
	res, err = run(200_000)
	if err != nil || res.Manifest.Sequence != 3 {
		t.Fatalf("next backup: %+v, %v; want sequence 3", res, err)
	}
}

func plant(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
