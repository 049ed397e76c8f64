package s3

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage"
)

// lockTestStore returns a Store with prefix "tenant-a" on a fresh bucket of
// the primary test server, created with bopts (see testStore).
func lockTestStore(t *testing.T, bopts BucketOptions, edit func(*Options)) *Store {
	t.Helper()
	return testStore(t, testenv.S3(t, "primary"), bopts, func(o *Options) {
		o.Prefix, o.PartSize = "tenant-a", 5<<20
		if edit != nil {
			edit(o)
		}
	})
}

func governanceHour(o *Options) { o.LockMode, o.LockFor = LockGovernance, time.Hour }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func readAll(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
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

// TestLockedUploads: on a lock-enabled bucket, single-part and multipart
// uploads (Put and Create) succeed with the checksum the server demands,
// carry governance retention for LockFor, cannot be disposed of, and stay
// readable; _coffer/ objects are not locked.
func TestLockedUploads(t *testing.T) {
	s := lockTestStore(t, BucketOptions{ObjectLock: true}, governanceHour)
	ctx := t.Context()
	small := randomBytes(1000)
	big := randomBytes(6<<20 + 123) // two parts of 5 MiB

	before := time.Now()
	if _, err := s.Put(ctx, "app/b1/payload.sqlite.zst.age", bytes.NewReader(big)); err != nil {
		t.Fatalf("multipart Put to a locked bucket: %v", err)
	}
	if _, err := s.Create(ctx, "app/b1/manifest.json", bytes.NewReader(small)); err != nil {
		t.Fatalf("small Create to a locked bucket: %v", err)
	}
	after := time.Now()

	for _, key := range []string{"app/b1/payload.sqlite.zst.age", "app/b1/manifest.json"} {
		until, err := s.RetainUntil(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		// The server keeps whole seconds at least; allow for that.
		if until.Before(before.Add(time.Hour-time.Second)) || until.After(after.Add(time.Hour+time.Second)) {
			t.Errorf("%s retained until %v, want about %v", key, until, before.Add(time.Hour))
		}
		ret, err := s.client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(s.keyPrefix + key)})
		if err != nil {
			t.Fatal(err)
		}
		if ret.Retention.Mode != types.ObjectLockRetentionModeGovernance {
			t.Errorf("%s lock mode %q, want GOVERNANCE", key, ret.Retention.Mode)
		}

		n, err := s.Dispose(ctx, key)
		if !errors.Is(err, storage.ErrLocked) {
			t.Fatalf("Dispose(%s) = %d, %v; want storage.ErrLocked", key, n, err)
		}
		if n != 0 {
			t.Errorf("Dispose(%s) removed %d versions of a locked object", key, n)
		}
		if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), until.UTC().Format("2006-01-02T15:04")) {
			t.Errorf("locked error %q should name the key and the retain-until date %v", err, until)
		}
	}
	if st, err := s.Stat(ctx, "app/b1/payload.sqlite.zst.age"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(st.ETag, "-") {
		t.Errorf("ETag %q is not a multipart ETag: the big object did not test CreateMultipartUpload", st.ETag)
	}
	if got := readAll(t, s, "app/b1/payload.sqlite.zst.age"); !bytes.Equal(got, big) {
		t.Error("locked multipart object changed after Dispose was refused")
	}
	if got := readAll(t, s, "app/b1/manifest.json"); !bytes.Equal(got, small) {
		t.Error("locked small object changed after Dispose was refused")
	}

	// Leases and other _coffer/ objects must stay replaceable and removable.
	if _, err := s.Put(ctx, "_coffer/lease/app", strings.NewReader("holder")); err != nil {
		t.Fatal(err)
	}
	if until, err := s.RetainUntil(ctx, "_coffer/lease/app"); err != nil || !until.IsZero() {
		t.Fatalf("_coffer/lease/app retained until %v (%v), want no retention", until, err)
	}
	if n, err := s.Dispose(ctx, "_coffer/lease/app"); err != nil || n != 1 {
		t.Fatalf("Dispose(_coffer/lease/app) = %d, %v; want 1, nil", n, err)
	}
	if _, err := s.Stat(ctx, "_coffer/lease/app"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("_coffer/lease/app still there after Dispose: %v", err)
	}
}

// unsignedPayload makes the client send UNSIGNED-PAYLOAD, as the SDK does
// over TLS; over the tests' plain HTTP it would otherwise sign the
// payload's SHA-256, an integrity check of its own.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// TestLockedUploadSendsChecksum: AWS refuses uploads with Object Lock
// retention that carry no integrity checksum (Content-MD5 or
// x-amz-checksum-*). MinIO does not insist, so this test checks what the
// server stored instead: locked uploads, single and multipart, sent via a
// client that signs UNSIGNED-PAYLOAD as the SDK does over TLS (so the
// checksum is the only integrity check), carry a CRC32 checksum the server
// verified and kept.
func TestLockedUploadSendsChecksum(t *testing.T) {
	s := lockTestStore(t, BucketOptions{ObjectLock: true}, governanceHour)
	ctx := t.Context()
	srv := testenv.S3(t, "primary")
	u, err := newStore(ctx, Options{
		Endpoint: srv.Endpoint, Region: srv.Region, Bucket: s.bucket, Prefix: "tenant-a", PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		PartSize: 5 << 20, LockMode: LockGovernance, LockFor: time.Hour,
	}, unsignedPayload)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size      int
		multipart bool
	}{{100, false}, {6 << 20, true}} {
		data := randomBytes(tc.size)
		key := fmt.Sprintf("app/b2/payload-%d", tc.size)
		if _, err := u.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatalf("locked Put of %d bytes: %v", tc.size, err)
		}
		if until, err := u.RetainUntil(ctx, key); err != nil || until.Before(time.Now().Add(59*time.Minute)) {
			t.Errorf("%s retained until %v (%v), want about an hour from now", key, until, err)
		}
		head, err := u.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.keyPrefix + key), ChecksumMode: types.ChecksumModeEnabled,
		})
		if err != nil {
			t.Fatal(err)
		}
		got := aws.ToString(head.ChecksumCRC32)
		var want [4]byte
		binary.BigEndian.PutUint32(want[:], crc32.ChecksumIEEE(data))
		switch {
		case got == "":
			t.Errorf("%s (%d bytes): server holds no CRC32 checksum: the locked upload sent none", key, tc.size)
		case !tc.multipart && got != base64.StdEncoding.EncodeToString(want[:]):
			t.Errorf("%s: stored CRC32 %s, want %s", key, got, base64.StdEncoding.EncodeToString(want[:]))
		case tc.multipart && !strings.HasSuffix(got, "-2"):
			t.Errorf("%s: stored CRC32 %q is not a checksum over 2 parts", key, got)
		}
		if got := readAll(t, u, key); !bytes.Equal(got, data) {
			t.Errorf("%s: read back differs", key)
		}
	}
}

// TestEnsureBucketWithRefusesUnlockedBucket: asking for Object Lock on an
// existing bucket without it is an error, not a silent unlocked setup.
func TestEnsureBucketWithRefusesUnlockedBucket(t *testing.T) {
	s := lockTestStore(t, BucketOptions{}, nil)
	err := s.EnsureBucketWith(t.Context(), BucketOptions{ObjectLock: true})
	if err == nil || !strings.Contains(err.Error(), "without Object Lock") {
		t.Fatalf("EnsureBucketWith(ObjectLock) on an unlocked bucket = %v, want an error", err)
	}
	if err := s.EnsureBucketWith(t.Context(), BucketOptions{}); err != nil {
		t.Fatalf("EnsureBucketWith on an existing bucket: %v", err)
	}
}

func TestNewLockOptions(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		d       time.Duration
		wantErr string
	}{
		{"", 0, ""},
		{"governance", time.Hour, ""},
		{"COMPLIANCE", 24 * time.Hour, ""},
		{"governance", 0, "positive lock duration"},
		{"compliance", -time.Hour, "positive lock duration"},
		{"", time.Hour, "without a lock mode"},
		{"legal-hold", time.Hour, `lock mode "legal-hold"`},
	} {
		_, err := New(t.Context(), Options{Bucket: "b", Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "s", LockMode: tc.mode, LockFor: tc.d})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("LockMode %q LockFor %s: %v", tc.mode, tc.d, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("LockMode %q LockFor %s: error %v, want one containing %q", tc.mode, tc.d, err, tc.wantErr)
		}
	}
}
