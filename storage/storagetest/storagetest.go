package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// LargeSize is the size of the large object the suite writes (generated from
// a seeded PRNG, compared by SHA-256). Stores with parts should be configured
// with a part size well below it so that it spans several parts.
const LargeSize = 40 << 20

// UploadLister is implemented by stores that can list their in-progress
// multipart uploads (storage/s3). When the store under test implements it,
// the suite asserts that no upload is left behind after an interrupted Put.
type UploadLister interface {
	ListMultipartUploads(ctx context.Context) ([]string, error)
}

// Run runs the conformance suite. newStore is called once per subtest and
// must return an empty store that is independent of the others.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("Create", func(t *testing.T) { testCreate(t, newStore(t)) })
	t.Run("InterruptedPut", func(t *testing.T) { testInterrupted(t, newStore(t)) })
	t.Run("String", func(t *testing.T) { testString(t, newStore(t)) })
	t.Run("Clock", func(t *testing.T) { testClock(t, newStore(t)) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// prng returns a reader of n deterministic pseudo-random bytes.
func prng(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 4 {
		for j := range 8 {
			s[i*8+j] = byte(seed >> (8 * j))
		}
		seed = seed*6364136223846793005 + 1442695040888963407
	}
	return s
}

func sum(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return [32]byte(h.Sum(nil)), n, err
}

func put(t *testing.T, s storage.Store, key string, data []byte) storage.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctxT(t), key, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(data)) {
		t.Fatalf("Put(%q) = %+v, want key %q size %d", key, info, key, len(data))
	}
	return info
}

func get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return data
}

func list(t *testing.T, s storage.Store, prefix string) []storage.ObjectInfo {
	t.Helper()
	var out []storage.ObjectInfo
	for info, err := range s.List(ctxT(t), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		out = append(out, info)
	}
	return out
}

func keys(infos []storage.ObjectInfo) []string {
	ks := make([]string, len(infos))
	for i, info := range infos {
		ks[i] = info.Key
	}
	return ks
}

func wantNotExist(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if info, err := s.Stat(ctxT(t), key); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", key, info, err)
	}
	if rc, err := s.Get(ctxT(t), key); !errors.Is(err, storage.ErrNotExist) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("Get(%q) error = %v; want ErrNotExist", key, err)
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	put(t, s, "small.txt", []byte("hello, coffer\n"))
	if got := get(t, s, "small.txt"); string(got) != "hello, coffer\n" {
		t.Errorf("Get(small.txt) = %q", got)
	}
	put(t, s, "empty", nil)
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Errorf("Get(empty) = %d bytes, want 0", len(got))
	}
	put(t, s, "deep/er/nested/key.bin", []byte{0, 1, 2, 255})
	if got := get(t, s, "deep/er/nested/key.bin"); !bytes.Equal(got, []byte{0, 1, 2, 255}) {
		t.Errorf("Get(nested) = %v", got)
	}

	// A large object, streamed (no Seeker, no length) as a pipeline would.
	const key = "job/20261123T020000.000Z-7f3a/payload.dump.zst.age"
	h := sha256.New()
	src := io.TeeReader(prng(1, LargeSize), h)
	info, err := s.Put(ctxT(t), key, struct{ io.Reader }{src})
	if err != nil {
		t.Fatalf("Put(large): %v", err)
	}
	want := [32]byte(h.Sum(nil))
	if info.Key != key || info.Size != LargeSize {
		t.Errorf("Put(large) = %+v, want key %q size %d", info, key, LargeSize)
	}
	rc, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(large): %v", err)
	}
	got, n, err := sum(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("Get(large): read: %v", err)
	}
	if n != LargeSize || got != want {
		t.Errorf("Get(large): %d bytes sha256 %x, want %d bytes sha256 %x", n, got, LargeSize, want)
	}
}

func testStat(t *testing.T, s storage.Store) {
	before := time.Now().Add(-5 * time.Minute)
	data := bytes.Repeat([]byte("x"), 12345)
	put(t, s, "dir/obj", data)
	info, err := s.Stat(ctxT(t), "dir/obj")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != "dir/obj" || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want key dir/obj size %d", info, len(data))
	}
	if info.ModTime.Before(before) || info.ModTime.After(time.Now().Add(5*time.Minute)) {
		t.Errorf("Stat ModTime = %v, want about now", info.ModTime)
	}
	// A "directory" is not an object.
	wantNotExist(t, s, "dir")
}

func testMissing(t *testing.T, s storage.Store) {
	wantNotExist(t, s, "missing")
	wantNotExist(t, s, "no/such/dir/key")
	if err := s.Delete(ctxT(t), "missing"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if err := s.Delete(ctxT(t), "no/such/dir/key"); err != nil {
		t.Errorf("Delete(no/such/dir/key) = %v, want nil", err)
	}
	// The error names the key, for messages.
	_, err := s.Stat(ctxT(t), "missing")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Stat(missing) error %q does not name the key", err)
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "k", []byte("first version, longer"))
	put(t, s, "k", []byte("second"))
	if got := get(t, s, "k"); string(got) != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got, "second")
	}
	info, err := s.Stat(ctxT(t), "k")
	if err != nil || info.Size != 6 {
		t.Errorf("Stat after overwrite = %+v, %v; want size 6", info, err)
	}
	if ks := keys(list(t, s, "")); !slices.Equal(ks, []string{"k"}) {
		t.Errorf("List after overwrite = %q, want [k]", ks)
	}
}

func testList(t *testing.T, s storage.Store) {
	var want []string
	for i := range 1100 {
		want = append(want, fmt.Sprintf("a/%05d", i))
	}
	others := []string{"ab/1", "ab/2", "a.txt", "a0", "b/x", "a-b/c", "x/a.txt", "x/a/b", "x/a0"}
	all := append(slices.Clone(want), others...)
	putMany(t, s, all)

	if got := keys(list(t, s, "a/")); !slices.Equal(got, want) {
		t.Errorf("List(a/) = %d keys, want %d (first %q, last %q)", len(got), len(want), first(got), last(got))
	}
	slices.Sort(all)
	if got := keys(list(t, s, "")); !slices.Equal(got, all) {
		t.Errorf("List(\"\") = %q...\nwant %q...", head(got), head(all))
	}
	cases := map[string][]string{
		"ab/":     {"ab/1", "ab/2"},
		"ab":      {"ab/1", "ab/2"},
		"x/":      {"x/a.txt", "x/a/b", "x/a0"}, // '.' < '/' < '0'
		"x/a":     {"x/a.txt", "x/a/b", "x/a0"},
		"x/a/":    {"x/a/b"},
		"b/x":     {"b/x"},
		"nope/":   nil,
		"a/0109":  {"a/01090", "a/01091", "a/01092", "a/01093", "a/01094", "a/01095", "a/01096", "a/01097", "a/01098", "a/01099"},
		"a/01099": {"a/01099"},
	}
	for prefix, want := range cases {
		if got := keys(list(t, s, prefix)); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	// Sizes come with the listing.
	for _, info := range list(t, s, "b/") {
		if info.Size != int64(len("b/x")) {
			t.Errorf("List(b/) size = %d, want %d", info.Size, len("b/x"))
		}
	}
	// Stopping early is allowed.
	n := 0
	for _, err := range s.List(ctxT(t), "a/") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
}

// putMany writes each key with its own name as content, 16 at a time.
func putMany(t *testing.T, s storage.Store, ks []string) {
	t.Helper()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(ks))
	sem := make(chan struct{}, 16)
	for _, k := range ks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func head(s []string) []string { return s[:min(len(s), 12)] }

func testDelete(t *testing.T, s storage.Store) {
	put(t, s, "d/1", []byte("one"))
	put(t, s, "d/2", []byte("two"))
	if err := s.Delete(ctxT(t), "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotExist(t, s, "d/1")
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"d/2"}) {
		t.Errorf("List after Delete = %q, want [d/2]", got)
	}
	if err := s.Delete(ctxT(t), "d/1"); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if err := s.Delete(ctxT(t), "d/2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting everything = %q", keys(got))
	}
	// The key can be used again.
	put(t, s, "d/1", []byte("again"))
	if got := get(t, s, "d/1"); string(got) != "again" {
		t.Errorf("Get after re-put = %q", got)
	}
}

func testCreate(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	info, err := storage.Create(ctx, s, "m/manifest.json", strings.NewReader("original"))
	if err != nil {
		t.Fatalf("first Create: %v", err)
	}
	if info.Key != "m/manifest.json" || info.Size != 8 {
		t.Errorf("Create = %+v", info)
	}
	if _, err := storage.Create(ctx, s, "m/manifest.json", strings.NewReader("usurper")); !errors.Is(err, storage.ErrExist) {
		t.Errorf("second Create error = %v, want ErrExist", err)
	}
	if got := get(t, s, "m/manifest.json"); string(got) != "original" {
		t.Errorf("after second Create, content = %q, want original", got)
	}
	put(t, s, "m/put-first", []byte("put"))
	if _, err := storage.Create(ctx, s, "m/put-first", strings.NewReader("create")); !errors.Is(err, storage.ErrExist) {
		t.Errorf("Create over Put error = %v, want ErrExist", err)
	}
	if got := keys(list(t, s, "m/")); !slices.Equal(got, []string{"m/manifest.json", "m/put-first"}) {
		t.Errorf("List(m/) = %q", got)
	}

	// Racing creators: when the store is a Creator, exactly one wins.
	if _, ok := s.(storage.Creator); !ok {
		return
	}
	const racers = 8
	var wg sync.WaitGroup
	results := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			_, results[i] = storage.Create(ctx, s, "m/race", strings.NewReader(fmt.Sprintf("racer %d", i)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both created m/race", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExist):
			t.Errorf("racer %d: %v, want nil or ErrExist", i, err)
		}
	}
	if winner >= 0 {
		if got := get(t, s, "m/race"); string(got) != fmt.Sprintf("racer %d", winner) {
			t.Errorf("m/race = %q, want racer %d's content", got, winner)
		}
	} else {
		t.Errorf("no racer created m/race")
	}
}

var errInjected = errors.New("injected reader failure")

// failingReader yields n bytes of src, then fails with errInjected.
type failingReader struct {
	src io.Reader
	n   int64
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errInjected
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.src.Read(p)
	r.n -= int64(n)
	return n, err
}

// cancellingReader yields n bytes of src, then cancels the context and keeps
// yielding, as a pipeline that is shut down from elsewhere would.
type cancellingReader struct {
	src    io.Reader
	n      int64
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
		// Give the store's own goroutines a moment to see it, as a real
		// pipeline's latency would.
		time.Sleep(10 * time.Millisecond)
	}
	n, err := r.src.Read(p)
	r.n -= int64(n)
	return n, err
}

func testInterrupted(t *testing.T, s storage.Store) {
	type writeFunc func(ctx context.Context, s storage.Store, key string, r io.Reader) (storage.ObjectInfo, error)
	putFn := func(ctx context.Context, s storage.Store, key string, r io.Reader) (storage.ObjectInfo, error) {
		return s.Put(ctx, key, r)
	}
	ops := []struct {
		name  string
		write writeFunc
	}{{"Put", putFn}, {"Create", storage.Create}}
	sizes := []struct {
		name      string
		at, total int64
	}{
		{"small", 1000, 4000},
		{"large", LargeSize / 2, LargeSize},
	}
	for _, op := range ops {
		for _, size := range sizes {
			for _, how := range []string{"ReaderError", "Cancel"} {
				name := op.name + "/" + size.name + "/" + how
				t.Run(name, func(t *testing.T) {
					key := "int/" + strings.ReplaceAll(name, "/", "-")
					var (
						r   io.Reader
						ctx = ctxT(t)
					)
					if how == "ReaderError" {
						r = &failingReader{src: prng(2, size.total), n: size.at}
					} else {
						var cancel context.CancelFunc
						ctx, cancel = context.WithCancel(ctx)
						defer cancel()
						r = &cancellingReader{src: prng(2, size.total), n: size.at, cancel: cancel}
					}
					info, err := op.write(ctx, s, key, r)
					if err == nil {
						t.Fatalf("%s with interrupted input succeeded: %+v", op.name, info)
					}
					if how == "ReaderError" && !errors.Is(err, errInjected) {
						t.Errorf("%s error = %v, want it to wrap the reader's error", op.name, err)
					}
					if how == "Cancel" && !errors.Is(err, context.Canceled) {
						t.Errorf("%s error = %v, want it to wrap context.Canceled", op.name, err)
					}
					wantNotExist(t, s, key)
					if got := list(t, s, "int/"); len(got) != 0 {
						t.Errorf("List after interrupted %s = %q, want nothing", op.name, keys(got))
					}
					wantNoUploads(t, s)

					// The key is still usable.
					if _, err := op.write(ctxT(t), s, key, strings.NewReader("ok")); err != nil {
						t.Fatalf("%s after interruption: %v", op.name, err)
					}
					if got := get(t, s, key); string(got) != "ok" {
						t.Errorf("content after retry = %q", got)
					}
					if err := s.Delete(ctxT(t), key); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}

	// An interrupted overwrite keeps the previous object intact.
	for _, size := range sizes {
		t.Run("Overwrite/"+size.name, func(t *testing.T) {
			key := "int/overwrite-" + size.name
			put(t, s, key, []byte("previous"))
			_, err := s.Put(ctxT(t), key, &failingReader{src: prng(3, size.total), n: size.at})
			if !errors.Is(err, errInjected) {
				t.Fatalf("interrupted overwrite error = %v, want injected failure", err)
			}
			if got := get(t, s, key); string(got) != "previous" {
				t.Errorf("after interrupted overwrite, content = %.40q, want previous", got)
			}
			if got := keys(list(t, s, key)); !slices.Equal(got, []string{key}) {
				t.Errorf("List = %q, want [%s]", got, key)
			}
			wantNoUploads(t, s)
		})
	}
}

func wantNoUploads(t *testing.T, s storage.Store) {
	t.Helper()
	ul, ok := s.(UploadLister)
	if !ok {
		return
	}
	uploads, err := ul.ListMultipartUploads(ctxT(t))
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	if len(uploads) != 0 {
		t.Errorf("multipart uploads left behind: %q", uploads)
	}
}

func testString(t *testing.T, s storage.Store) {
	str := s.String()
	if str == "" {
		t.Error("String() is empty")
	}
	lower := strings.ToLower(str)
	for _, bad := range []string{"secret", "password", "token"} {
		if strings.Contains(lower, bad) {
			t.Errorf("String() = %q mentions %q", str, bad)
		}
	}
}

// ClockTolerance is how far a store's own time (storage.Clock) may be from
// the test machine's clock in the suite: the store runs on the same machine
// (or one kept in step by NTP), and an HTTP Date header has one-second
// resolution.
const ClockTolerance = 5 * time.Second

// testClock checks that a store implementing storage.Clock tells the time
// within ClockTolerance of this machine's clock, and leaves no object
// behind doing so.
func testClock(t *testing.T, s storage.Store) {
	c, ok := s.(storage.Clock)
	if !ok {
		t.Skipf("%s does not implement storage.Clock", s)
	}
	ctx := ctxT(t)
	before := time.Now()
	got, err := c.Now(ctx)
	after := time.Now()
	if err != nil {
		t.Fatalf("%s: Now: %v", s, err)
	}
	if got.Before(before.Add(-ClockTolerance)) || got.After(after.Add(ClockTolerance)) {
		t.Errorf("%s: Now = %s, want within %s of this machine's %s", s, got.UTC(), ClockTolerance, before.UTC())
	}
	if left := list(t, s, ""); len(left) > 0 {
		t.Errorf("%s: Now left objects behind: %v", s, keys(left))
	}
}
