package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// How commit reads a manifest back after its write reported an error: up
// to readBackAttempts reads, readBackBackoff apart (doubled each time), all
// within readBackTimeout, on a context of its own (the run's may be the
// reason the write failed).
var (
	readBackAttempts = 4
	readBackBackoff  = 250 * time.Millisecond
	readBackTimeout  = time.Minute
)

// commit writes m's manifest, signed by signer, to d: the step that makes
// the payload already there a backup. A write that reports an error may
// still have been committed by the server (a response lost on the way
// back, a 5xx after the commit, a cancel mid-write), so commit then reads
// the manifest back and decides from what d holds:
//
//   - our manifest is there (the same bytes, or one that verifies and
//     names the same backup and payload): the backup is committed, and
//     commit returns nil;
//   - no manifest is there (storage.ErrNotExist): the payload is not a
//     backup and is deleted, and commit returns the write's error;
//   - it cannot tell (every read fails) or another manifest is there:
//     the payload is left in place and commit returns an error saying so.
//     A later repair or sweep decides: a payload with a verified manifest
//     is a backup (repair heals it), one without is swept after the grace.
//
// A payload is deleted only when its manifest is proven absent.
func commit(ctx context.Context, d storage.Destination, m *manifest.Manifest, signer *sign.Signer, trust manifest.Trust, log *zap.Logger) error {
	werr := manifest.Write(ctx, d.Store, m, signer)
	if werr == nil {
		return nil
	}
	log = log.With(zap.String("destination", d.Name), zap.String("store", d.Store.String()))
	want, err := m.Sign(signer)
	if err != nil {
		return werr // not signable: Write failed before reaching the store
	}
	key := manifest.Key(m.Job, m.ID)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
	defer cancel()
	got, rerr := readBack(rctx, d.Store, key)
	switch {
	case errors.Is(rerr, storage.ErrNotExist):
		// Without its manifest the payload is not a backup; remove it (best
		// effort; the sweep catches leftovers).
		if err := d.Store.Delete(rctx, m.Payload.Key); err != nil && !errors.Is(err, storage.ErrNotExist) {
			log.Warn("payload without a manifest not deleted; the sweep removes it after the grace", zap.Error(err))
		}
		return werr
	case rerr != nil:
		log.Error("manifest write failed and reading it back failed: the backup may or may not be committed here; the payload is left for repair or the sweep to decide",
			zap.NamedError("write_error", werr), zap.NamedError("read_error", rerr))
		return fmt.Errorf("commit unknown: %w; reading %s back to see whether it was stored: %v (the payload is left in place; a later repair or sweep decides)", werr, key, rerr)
	case bytes.Equal(got, want) || sameBackup(got, m, trust):
		log.Warn("manifest write reported an error, but the manifest is stored: the backup is committed", zap.NamedError("write_error", werr))
		return nil
	default:
		log.Error("manifest write failed and another manifest is stored under its key; the payload is left for repair to decide", zap.NamedError("write_error", werr))
		return fmt.Errorf("%w; %s holds another manifest, not this backup's (the payload is left in place; a later repair decides)", werr, key)
	}
}

// readBack reads key from s, retrying a failed read with backoff. An
// error wrapping storage.ErrNotExist proves the object absent.
func readBack(ctx context.Context, s storage.Store, key string) ([]byte, error) {
	wait := readBackBackoff
	var err error
	for attempt := 1; ; attempt++ {
		var data []byte
		data, err = getAll(ctx, s, key)
		if err == nil || errors.Is(err, storage.ErrNotExist) {
			return data, err
		}
		if attempt >= readBackAttempts {
			return nil, fmt.Errorf("after %d reads: %w", attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// maxManifest bounds what readBack reads of a manifest object.
const maxManifest = 16 << 20

func getAll(ctx context.Context, s storage.Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifest))
}

// sameBackup reports whether data is a manifest that verifies as trust
// says and describes the backup m describes, with the same payload.
func sameBackup(data []byte, m *manifest.Manifest, trust manifest.Trust) bool {
	got, err := manifest.Decode(data, trust)
	return err == nil && got.Job == m.Job && got.ID == m.ID && got.Payload.Key == m.Payload.Key && got.Payload.Digest == m.Payload.Digest
}
