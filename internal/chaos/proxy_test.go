package chaos

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage/s3"
)

// upstream is a server that records what reached it.
type upstream struct {
	mu     sync.Mutex
	hosts  []string
	bodies [][]byte
	srv    *httptest.Server
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.hosts = append(u.hosts, r.Host)
		u.bodies = append(u.bodies, b)
		u.mu.Unlock()
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, "stored")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) received() ([]string, [][]byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hosts), slices.Clone(u.bodies)
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// put sends a PUT of body to path through the proxy with a fresh
// connection.
func put(p *Proxy, path string, body []byte, timeout time.Duration) (int, string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodPut, p.URL()+path, bytes.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           Class
	}{
		{"PUT", "/b/app/20261123T020000.123Z-7f3a/manifest.json", ClassManifestPut},
		{"PUT", "/b/app/20261123T020000.123Z-7f3a/payload.dump.zst.age", ClassPayloadPut},
		{"PUT", "/b/app/x/payload.dump.zst.age?partNumber=2&uploadId=u1", ClassPart},
		{"POST", "/b/app/x/payload.dump.zst.age?uploads", ClassCreateUpload},
		{"POST", "/b/app/x/payload.dump.zst.age?uploadId=u1", ClassComplete},
		{"DELETE", "/b/app/x/payload.dump.zst.age?uploadId=u1", ClassAbort},
		{"PUT", "/b/_coffer/audit/2026-12-02.jsonl", ClassPut},
		{"GET", "/b?list-type=2&prefix=app%2F", ClassList},
		{"GET", "/b/?uploads", ClassList},
		{"GET", "/b/app/x/manifest.json", ClassGet},
		{"HEAD", "/b/app/x/manifest.json", ClassHead},
		{"DELETE", "/b/app/x/manifest.json", ClassDelete},
		{"POST", "/b?delete", ClassDelete},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if got := Classify(r); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestPassPreservesHostAndBody(t *testing.T) {
	u := newUpstream(t)
	p := newProxy(t, u.srv.URL)
	body := bytes.Repeat([]byte("x"), 100_000)
	code, got, err := put(p, "/b/k", body, 5*time.Second)
	if err != nil || code != 200 || got != "stored" {
		t.Fatalf("PUT through a passing proxy: %d %q %v", code, got, err)
	}
	hosts, bodies := u.received()
	if len(hosts) != 1 || hosts[0] != strings.TrimPrefix(p.URL(), "http://") {
		t.Fatalf("upstream saw Host %q, want the proxy's %s (SigV4 signs the client's Host)", hosts, p.URL())
	}
	if !bytes.Equal(bodies[0], body) {
		t.Fatalf("upstream got %d bytes, want %d", len(bodies[0]), len(body))
	}
	if n := p.BodyBytes(ClassPut); n != int64(len(body)) {
		t.Fatalf("BodyBytes = %d, want %d", n, len(body))
	}
	if inj := p.Injected(); len(inj) != 0 {
		t.Fatalf("injected %v with no rules", inj)
	}
}

func TestDropCommitsButTheClientGetsNoAnswer(t *testing.T) {
	u := newUpstream(t)
	p := newProxy(t, u.srv.URL)
	p.SetRules(1, Rule{Class: ClassManifestPut, Nth: 1, Fault: Drop})
	_, _, err := put(p, "/b/app/id/manifest.json", []byte("{}"), 5*time.Second)
	if err == nil {
		t.Fatal("dropped PUT answered; want a connection error")
	}
	if _, bodies := u.received(); len(bodies) != 1 || string(bodies[0]) != "{}" {
		t.Fatalf("upstream got %q; want the whole request (the server commits, the answer is lost)", bodies)
	}
	// Only the first manifest PUT is dropped.
	if code, _, err := put(p, "/b/app/id/manifest.json", []byte("{}"), 5*time.Second); err != nil || code != 200 {
		t.Fatalf("second PUT: %d %v", code, err)
	}
}

func TestServerErrorIsNotForwarded(t *testing.T) {
	u := newUpstream(t)
	p := newProxy(t, u.srv.URL)
	p.SetRules(1, Rule{Fault: ServerError, Prob: 1})
	code, body, err := put(p, "/b/k", []byte("data"), 5*time.Second)
	if err != nil || code != 503 || !strings.Contains(body, "SlowDown") {
		t.Fatalf("got %d %q %v; want 503 SlowDown", code, body, err)
	}
	if hosts, _ := u.received(); len(hosts) != 0 {
		t.Fatalf("upstream saw %d requests; a 503 must not be forwarded", len(hosts))
	}
}

func TestResetCutsTheBodyMidway(t *testing.T) {
	var got []int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, len(b))
		mu.Unlock()
		if err != nil {
			return // the body was cut: no answer, nothing stored
		}
		io.WriteString(w, "stored")
	}))
	t.Cleanup(srv.Close)
	p := newProxy(t, srv.URL)
	p.SetRules(1, Rule{Class: ClassPart, Nth: 1, Fault: Reset, ResetAfter: 300_000})
	body := bytes.Repeat([]byte("p"), 1_000_000)
	_, _, err := put(p, "/b/app/x/payload.dump.zst.age?partNumber=1&uploadId=u", body, 5*time.Second)
	if err == nil {
		t.Fatal("reset PUT answered; want a connection error")
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] >= len(body) || got[0] > 300_000 {
		t.Fatalf("upstream read %v bytes; want a body cut at 300000 of %d", got, len(body))
	}
	if inj := p.Injected(); len(inj) != 1 || inj[0].Fault != Reset || inj[0].Class != ClassPart {
		t.Fatalf("injected %+v", inj)
	}
}

func TestBlackholeHoldsUntilItEnds(t *testing.T) {
	u := newUpstream(t)
	p := newProxy(t, u.srv.URL)
	p.SetBlackhole(true)
	errc := make(chan error, 1)
	go func() {
		_, _, err := put(p, "/b/k", []byte("x"), 30*time.Second)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("black-holed request ended early: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	p.SetBlackhole(false)
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("held request answered after the black hole ended; want its connection reset")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held request still hanging after the black hole ended")
	}
	if hosts, _ := u.received(); len(hosts) != 0 {
		t.Fatalf("upstream saw %d requests during the black hole", len(hosts))
	}
	if code, _, err := put(p, "/b/k", []byte("x"), 5*time.Second); err != nil || code != 200 {
		t.Fatalf("after the black hole: %d %v", code, err)
	}
}

func TestSameSeedSameFaults(t *testing.T) {
	u := newUpstream(t)
	run := func() []Injection {
		p := newProxy(t, u.srv.URL)
		p.SetRules(42, Rule{Class: ClassGet, Prob: 0.3, Fault: ServerError}, Rule{Prob: 0.2, Fault: ServerError})
		c := &http.Client{Timeout: 5 * time.Second}
		for i := range 60 {
			path := "/b/k"
			if i%3 == 0 {
				path = "/b?list-type=2"
			}
			resp, err := c.Get(p.URL() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		return p.Injected()
	}
	a, b := run(), run()
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("same seed, same requests, different faults:\n%v\n%v", a, b)
	}
}

// TestS3ThroughTheProxy checks, against a real MinIO, that SigV4 requests
// pass the proxy and that a dropped answer still leaves the object
// stored.
func TestS3ThroughTheProxy(t *testing.T) {
	srv := testenv.S3(t, "primary")
	opts := s3test.Options(srv)
	direct := s3test.NewBucket(t, "primary", func(o *s3.Options) { o.Bucket = opts.Bucket })
	p := newProxy(t, srv.Endpoint)
	ctx := context.Background()
	opts.Endpoint = p.URL()
	via, err := s3.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := via.Put(ctx, "a/1", strings.NewReader("one")); err != nil {
		t.Fatalf("put through a passing proxy: %v", err)
	}
	p.SetRules(7, Rule{Class: ClassPut, Nth: 1, Fault: Drop}, Rule{Class: ClassPut, Nth: 2, Fault: ServerError})
	_, err = via.Put(ctx, "a/2", strings.NewReader("two")) // the SDK may retry past both faults
	t.Logf("put with its first answer dropped and a 503: %v", err)
	rc, gerr := direct.Get(ctx, "a/2")
	if gerr != nil {
		t.Fatalf("object whose PUT answer was dropped is not stored: %v", gerr)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "two" {
		t.Fatalf("stored %q", b)
	}
	if inj := p.Injected(); len(inj) < 1 || inj[0].Fault != Drop {
		t.Fatalf("injected %+v; want the drop first", inj)
	}
}
