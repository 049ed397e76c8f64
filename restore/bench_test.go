package restore_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// benchDump returns about n bytes of rows like a dump's COPY data, with
// enough variety that zstd has work to do.
func benchDump(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n+256)
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "%d\t%d\tcustomer-%06d@example.com\t%d.%02d\t2024-06-%02d %02d:%02d:%02d+00\t{\"sku\": \"SKU-%d\", \"qty\": %d}\n",
			i, r.IntN(100000), r.IntN(1000000), r.IntN(10000), r.IntN(100), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(997), r.IntN(13))
	}
	return b
}

// BenchmarkRestoreRun restores a backup of about 200 MB from a local
// directory into io.Discard, without progress and with it (every read
// counted in a Meter, a reporter sampling it every 250 ms, as a
// terminal's redraw does): the progress costs the hot path an atomic add
// per read, nothing measurable. Run it with
//
//	go test -run '^$' -bench RestoreRun -benchtime 5x ./restore
func BenchmarkRestoreRun(b *testing.B) {
	signer := signtest.NewSigner()
	ident := backuptest.NewIdentity(b)
	dests := backuptest.LocalDestinations(b, "primary")
	m := backuptest.Backup(b, dests, ident.Recipient().String(), signer, benchDump(200<<20))
	req := restore.Request{Job: "app", Destinations: dests, Identities: []age.Identity{ident}, Trust: signtest.Trust(signer)}
	discard := func(dumpinfo.Info) (snapshot.Loader, error) { return restore.WriterLoader(io.Discard, "discard"), nil }
	run := func(b *testing.B, ctx context.Context) {
		b.SetBytes(m.Plain.Bytes)
		for b.Loop() {
			rep, err := restore.Run(ctx, req, discard, zap.NewNop())
			if err != nil || rep.PlainBytes != m.Plain.Bytes {
				b.Fatalf("restore: %+v, %v", rep, err)
			}
		}
	}
	b.Run("without-progress", func(b *testing.B) { run(b, context.Background()) })
	b.Run("with-progress", func(b *testing.B) {
		ctx, stop := progress.Start(context.Background(), progress.Options{Log: zap.NewNop(), Every: 250 * time.Millisecond})
		defer stop()
		run(b, ctx)
	})
}
