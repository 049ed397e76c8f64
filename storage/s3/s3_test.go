package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/storagetest"
)

// testOptions returns options for a fresh, randomly named bucket on srv.
func testOptions(srv testenv.S3Server) Options {
	var b [6]byte
	rand.Read(b[:])
	return Options{
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		Bucket:          "coffer-test-" + hex.EncodeToString(b[:]),
		PathStyle:       true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	}
}

// testStore returns a Store on a fresh bucket of srv (see testOptions),
// created with bopts, after edit (if not nil) adjusted its options. At
// cleanup the bucket must be removable (governance locks are bypassed), or
// the test fails.
func testStore(t *testing.T, srv testenv.S3Server, bopts BucketOptions, edit func(*Options)) *Store {
	t.Helper()
	opts := testOptions(srv)
	if edit != nil {
		edit(&opts)
	}
	s, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucketWith(t.Context(), bopts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeBucket(t, s) })
	return s
}

// newTestStore returns a Store with prefix on a fresh bucket of the shared
// MinIO server which ("primary" or "offsite").
func newTestStore(t *testing.T, which, prefix string) *Store {
	t.Helper()
	return testStore(t, testenv.S3(t, which), BucketOptions{}, func(o *Options) {
		o.Prefix = prefix
		o.PartSize = 5 << 20 // the minimum: the 40 MiB object spans 8 parts
		o.Concurrency = 3
	})
}

func removeBucket(t *testing.T, s *Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.RemoveBucket(ctx); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newTestStore(t, "primary", "tenant-a/backups")
	})
}

// TestOffsiteSmoke checks the second server, without a prefix.
func TestOffsiteSmoke(t *testing.T) {
	s := newTestStore(t, "offsite", "")
	ctx := t.Context()
	if _, err := s.Put(ctx, "j/b/manifest.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "j/b/manifest.json", strings.NewReader("{}")); !errors.Is(err, storage.ErrExist) {
		t.Errorf("Create over existing = %v, want ErrExist", err)
	}
	var keys []string
	for info, err := range s.List(ctx, "j/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if !slices.Equal(keys, []string{"j/b/manifest.json"}) {
		t.Errorf("List = %q", keys)
	}
	if err := s.Delete(ctx, "j/b/manifest.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "j/b/manifest.json"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat after Delete = %v, want ErrNotExist", err)
	}
}

// TestPrefix checks that keys are stored under the prefix, that the prefix
// never shows in ObjectInfo.Key, and that a sibling prefix is invisible.
func TestPrefix(t *testing.T) {
	s := newTestStore(t, "primary", "/tenant/")
	ctx := t.Context()
	sibling := *s
	sibling.keyPrefix = "tenant2/"
	if _, err := sibling.Put(ctx, "x", strings.NewReader("other tenant")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(ctx, "x", strings.NewReader("mine"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "x" {
		t.Errorf("Put key = %q, want x", info.Key)
	}
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String("tenant/x")}); err != nil {
		t.Errorf("raw key tenant/x: %v", err)
	}
	var keys []string
	for info, err := range s.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if !slices.Equal(keys, []string{"x"}) {
		t.Errorf("List = %q, want [x]", keys)
	}
	if !strings.HasPrefix(s.String(), "s3://"+s.bucket+"/tenant (127.0.0.1:") {
		t.Errorf("String() = %q", s.String())
	}
}

func TestNotExistMessage(t *testing.T) {
	s := newTestStore(t, "primary", "p")
	_, err := s.Get(t.Context(), "no/such/key")
	if !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Get = %v, want ErrNotExist", err)
	}
	for _, want := range []string{"no/such/key", s.bucket} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	ctx := t.Context()
	bad := []Options{
		{},
		{Bucket: "b", PartSize: 1 << 20},
		{Bucket: "b", Concurrency: -1},
		{Bucket: "b", AccessKeyID: "AKIA"},
		{Bucket: "b", Endpoint: "http://user:pass@host"},
	}
	for _, o := range bad {
		if _, err := New(ctx, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	s, err := New(ctx, Options{Bucket: "b", Prefix: "p/q/", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "very-secret", SessionToken: "tok-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "s3://b/p/q" {
		t.Errorf("String() = %q, want s3://b/p/q", got)
	}
	s, err = New(ctx, Options{Bucket: "b", Endpoint: "minio.example:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "s3://b (minio.example:9000)" {
		t.Errorf("String() = %q", got)
	}
	if _, err := s.Put(ctx, "../x", strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "invalid key") {
		t.Errorf("Put(../x) = %v, want invalid key", err)
	}
}

// fakeS3 answers just enough of the S3 API for a multipart upload, and
// answers CompleteMultipartUpload with 200 OK and an error body, as S3 may.
type fakeS3 struct {
	completes, aborts, parts atomic.Int32
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	io.Copy(io.Discard, r.Body)
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>`)
	case r.Method == http.MethodPut && q.Has("partNumber"):
		f.parts.Add(1)
		w.Header().Set("ETag", `"etag-`+q.Get("partNumber")+`"`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		f.completes.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>r</RequestId></Error>`)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		f.aborts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusNotImplemented)
	}
}

func TestComplete200ErrorIsFailure(t *testing.T) {
	fake := &fakeS3{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := New(t.Context(), Options{
		Endpoint: srv.URL, Bucket: "b", PathStyle: true,
		AccessKeyID: "a", SecretAccessKey: "s", PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(t.Context(), "k", bytes.NewReader(make([]byte, 11<<20)))
	if err == nil {
		t.Fatal("Put succeeded although CompleteMultipartUpload answered 200 with an error body")
	}
	if !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("error %q does not carry the server's error code", err)
	}
	if fake.parts.Load() != 3 || fake.completes.Load() == 0 {
		t.Errorf("parts %d, completes %d: the upload did not get as far as completing", fake.parts.Load(), fake.completes.Load())
	}
	if fake.aborts.Load() == 0 {
		t.Error("the multipart upload was not aborted")
	}
}

// TestBoundedMemory streams an object much larger than the part buffers and
// checks that the heap does not grow with it.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large upload")
	}
	s := newTestStore(t, "primary", "mem")
	const size = 256 << 20
	runtime.GC()
	var peak atomic.Uint64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
		}
	})
	info, err := s.Put(t.Context(), "big", struct{ io.Reader }{io.LimitReader(zeros{}, size)})
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Errorf("size %d, want %d", info.Size, size)
	}
	grew := int64(peak.Load()) - int64(base)
	// At most Concurrency part buffers (3 × 5 MiB) plus SDK overhead and
	// garbage not yet collected (18 MiB measured); the transfermanager this
	// replaced held five buffers and grew the heap by 28 MiB here.
	const limit = 21 << 20
	t.Logf("heap grew by %d MiB during a %d MiB upload (part size 5 MiB, concurrency 3)", grew>>20, size>>20)
	if grew > limit {
		t.Errorf("heap grew by %d MiB during a %d MiB upload; want < %d MiB", grew>>20, size>>20, limit>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
