package s3_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

func withPrefix(o *s3.Options) { o.Prefix = "tenant-a/backups" }

func TestReplace(t *testing.T) {
	s := s3test.NewBucket(t, "primary", withPrefix)
	ctx := t.Context()
	first, err := s.Create(ctx, "lease.json", strings.NewReader("v1"))
	if err != nil {
		t.Fatal(err)
	}
	data, info, err := s.GetWithInfo(ctx, "lease.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "v1" || info.ETag != first.ETag || info.Size != 2 {
		t.Fatalf("GetWithInfo = %q, %+v; want v1 with Create's ETag %q", data, info, first.ETag)
	}

	if _, err := s.Replace(ctx, "lease.json", []byte("wrong"), "0123456789abcdef0123456789abcdef"); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Errorf("Replace with a wrong ETag: %v, want ErrPreconditionFailed", err)
	}
	second, err := s.Replace(ctx, "lease.json", []byte("v2"), first.ETag)
	if err != nil {
		t.Fatalf("Replace with the current ETag: %v", err)
	}
	if second.ETag == "" || second.ETag == first.ETag {
		t.Errorf("Replace returned ETag %q, want a new one (old %q)", second.ETag, first.ETag)
	}
	// The ETag of the version just replaced is stale now.
	if _, err := s.Replace(ctx, "lease.json", []byte("stale"), first.ETag); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Errorf("Replace with a stale ETag: %v, want ErrPreconditionFailed", err)
	}
	data, info, err = s.GetWithInfo(ctx, "lease.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "v2" || info.ETag != second.ETag {
		t.Errorf("after replacements: %q (ETag %q), want v2 (ETag %q)", data, info.ETag, second.ETag)
	}
	if st, err := s.Stat(ctx, "lease.json"); err != nil || st.ETag != second.ETag {
		t.Errorf("Stat = %+v, %v; want ETag %q", st, err, second.ETag)
	}

	_, err = s.Replace(ctx, "missing.json", []byte("x"), first.ETag)
	if !errors.Is(err, storage.ErrPreconditionFailed) || !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Replace of a missing key: %v, want ErrPreconditionFailed and ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "missing.json"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Replace of a missing key created it: Stat = %v", err)
	}
	if _, _, err := s.GetWithInfo(ctx, "missing.json"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("GetWithInfo of a missing key: %v, want ErrNotExist", err)
	}
}

// TestReplaceRace: of writers racing to replace the same version, exactly
// one wins and the object holds its data.
func TestReplaceRace(t *testing.T) {
	s := s3test.NewBucket(t, "primary")
	ctx := t.Context()
	first, err := s.Create(ctx, "k", strings.NewReader("v1"))
	if err != nil {
		t.Fatal(err)
	}
	const racers = 10
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = s.Replace(ctx, "k", fmt.Appendf(nil, "racer %d", i), first.ETag)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both replaced the same version", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrPreconditionFailed):
			t.Errorf("racer %d: %v, want nil or ErrPreconditionFailed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer replaced the object")
	}
	data, _, err := s.GetWithInfo(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("racer %d", winner); string(data) != want {
		t.Errorf("object = %q, want %q", data, want)
	}
}

func TestProbeConditionalWrites(t *testing.T) {
	s := s3test.NewBucket(t, "primary", withPrefix)
	if err := s.ProbeConditionalWrites(t.Context()); err != nil {
		t.Fatalf("probe on MinIO: %v", err)
	}
	for info, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("probe left %s behind", info.Key)
	}
}

// TestProbeDetectsIgnoredConditions runs the probe against a stand-in S3
// server that ignores If-None-Match and If-Match, as some S3-compatible
// servers do.
func TestProbeDetectsIgnoredConditions(t *testing.T) {
	var mu sync.Mutex
	objects := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		data, ok := objects[r.URL.Path]
		switch r.Method {
		case http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			objects[r.URL.Path] = body
			w.Header().Set("ETag", etag(body))
		case http.MethodHead, http.MethodGet:
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("ETag", etag(data))
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
			if r.Method == http.MethodGet {
				w.Write(data)
			}
		case http.MethodDelete:
			delete(objects, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	defer srv.Close()

	s, err := s3.New(t.Context(), s3.Options{
		Endpoint: srv.URL, Bucket: "lax", PathStyle: true,
		AccessKeyID: "key", SecretAccessKey: "secret", Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.ProbeConditionalWrites(t.Context())
	if err == nil {
		t.Fatal("probe passed on a server that ignores conditions")
	}
	t.Logf("probe error: %v", err)
	if want := "s3://lax"; !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "does not honour conditional writes (If-None-Match/If-Match); HA mode needs them") {
		t.Errorf("probe error = %q, want it to name %s and say it does not honour conditional writes", err, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(objects) != 0 {
		t.Errorf("probe left %d objects behind", len(objects))
	}
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}
