package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/metrics"
)

var client = &http.Client{Timeout: 10 * time.Second}

// start runs a server on a free loopback port and returns its base URL.
func start(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

type response struct {
	code int
	body string
	hdr  http.Header
}

// do sends method url with headers given as "Name: value".
func do(t *testing.T, method, url string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, string(b), resp.Header}
}

func get(t *testing.T, url string, headers ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, headers...)
}

func expect(t *testing.T, what string, r response, code int, body string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.body, body) {
		t.Errorf("%s: got %d %q, want %d containing %q", what, r.code, r.body, code, body)
	}
}

func TestHealthz(t *testing.T) {
	_, base := start(t, Options{Ready: func(context.Context) error { return errors.New("db down") }})
	// Liveness does not depend on readiness.
	r := get(t, base+"/healthz")
	if r.code != http.StatusOK || r.body != "ok\n" {
		t.Errorf("healthz: %d %q, want 200 \"ok\\n\"", r.code, r.body)
	}
}

func TestReadyz(t *testing.T) {
	deadlines := make(chan time.Time, 1)
	var fail atomic.Value // error
	_, base := start(t, Options{Ready: func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		select {
		case deadlines <- d:
		default:
		}
		err, _ := fail.Load().(error)
		return err
	}})

	before := time.Now()
	expect(t, "ready", get(t, base+"/readyz"), http.StatusOK, "ready")
	after := time.Now()
	deadline := <-deadlines
	if deadline.Before(before.Add(readyTimeout)) || deadline.After(after.Add(readyTimeout)) {
		t.Errorf("Ready's context ends %v after the request, want %v", deadline.Sub(before), readyTimeout)
	}

	fail.Store(errors.New("destination offsite: lease store unreachable"))
	r := get(t, base+"/readyz")
	expect(t, "not ready", r, http.StatusServiceUnavailable, "not ready: destination offsite: lease store unreachable")
	if cc := r.hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

func TestMetricsServesTheGatherer(t *testing.T) {
	m := metrics.New()
	now := time.Now()
	m.BackupFinished("orders", metrics.OutcomePartial, now.Add(-time.Minute), now, map[string]metrics.DestResult{
		"primary": {OK: true, Bytes: 4096},
	})
	_, base := start(t, Options{Gatherer: m.Registry()})

	r := get(t, base+"/metrics")
	for _, line := range []string{
		`coffer_backup_runs_total{job="orders",outcome="partial"} 1`,
		`coffer_backup_last_bytes{destination="primary",job="orders"} 4096`,
		"go_goroutines ",
	} {
		expect(t, "metrics", r, http.StatusOK, line)
	}
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("metrics Content-Type %q, want the text exposition format", ct)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	_, base := start(t, Options{})
	expect(t, "unknown path", get(t, base+"/debug/pprof/"), http.StatusNotFound, "")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		r := do(t, http.MethodPost, base+p)
		expect(t, "POST "+p, r, http.StatusMethodNotAllowed, "")
		if !strings.Contains(r.hdr.Get("Allow"), "GET") {
			t.Errorf("POST %s: Allow %q, want GET", p, r.hdr.Get("Allow"))
		}
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-scrape-token"
	core, logs := observer.New(zapcore.DebugLevel)
	m := metrics.New()
	m.Swept("primary", 1)
	_, base := start(t, Options{Token: config.NewSecret(token), Gatherer: m.Registry(), Log: zap.New(core)})

	for _, c := range []struct {
		name   string
		header string
	}{
		{"missing", ""},
		{"wrong", "Authorization: Bearer not-the-token"},
		{"prefix of the token", "Authorization: Bearer s3cret"},
		{"token plus more", "Authorization: Bearer " + token + "x"},
		{"other scheme", "Authorization: Basic " + token},
		{"bare token", "Authorization: " + token},
		{"empty bearer", "Authorization: Bearer "},
	} {
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/nope"} {
			var hs []string
			if c.header != "" {
				hs = append(hs, c.header)
			}
			r := get(t, base+p, hs...)
			if r.code != http.StatusUnauthorized {
				t.Errorf("%s token, %s: %d %q, want 401", c.name, p, r.code, r.body)
			}
			if ch := r.hdr.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("%s token, %s: WWW-Authenticate %q, want a Bearer challenge", c.name, p, ch)
			}
			if strings.Contains(r.body, token) || strings.Contains(r.body, "coffer_") {
				t.Errorf("%s token, %s: body leaks %q", c.name, p, r.body)
			}
		}
	}

	auth := "Authorization: Bearer " + token
	expect(t, "right token, healthz", get(t, base+"/healthz", auth), http.StatusOK, "ok")
	expect(t, "right token, readyz", get(t, base+"/readyz", auth), http.StatusOK, "ready")
	expect(t, "right token, metrics", get(t, base+"/metrics", auth), http.StatusOK, `coffer_swept_leftovers_total{destination="primary"} 1`)
	expect(t, "scheme is case-insensitive", get(t, base+"/healthz", "Authorization: bearer "+token), http.StatusOK, "ok")

	if logs.Len() == 0 {
		t.Fatal("no log entries: refusals should be logged at debug level")
	}
	for _, e := range logs.All() {
		if s := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(s, "s3cret") || strings.Contains(s, "not-the-token") {
			t.Errorf("log entry shows a token: %s", s)
		}
	}
}

func TestAllowList(t *testing.T) {
	outside := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	_, base := start(t, Options{Allow: outside})
	for _, p := range []string{"/healthz", "/metrics", "/nope"} {
		expect(t, "excluded client "+p, get(t, base+p), http.StatusForbidden, "forbidden")
	}
	// Headers a client sets cannot make it look like an allowed address.
	for _, h := range []string{"X-Forwarded-For: 10.1.2.3", "X-Real-IP: 10.1.2.3", "Forwarded: for=10.1.2.3"} {
		expect(t, h, get(t, base+"/healthz", h), http.StatusForbidden, "forbidden")
	}

	inside := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}
	_, base = start(t, Options{Allow: inside})
	expect(t, "included client", get(t, base+"/healthz"), http.StatusOK, "ok")
}

func TestAllowListIsCheckedBeforeTheToken(t *testing.T) {
	_, base := start(t, Options{
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Token: config.NewSecret("tok"),
	})
	r := get(t, base+"/healthz", "Authorization: Bearer tok")
	expect(t, "excluded client with the right token", r, http.StatusForbidden, "forbidden")
}

func TestAllowedAddressForms(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fe80::/10")}
	for remote, want := range map[string]bool{
		"127.0.0.1:5000":          true,
		"[::ffff:127.0.0.1]:5000": true, // IPv4 client on a dual-stack socket
		"[fe80::1%eth0]:5000":     true,
		"[::1]:5000":              false,
		"10.0.0.1:5000":           false,
		"127.0.0.1":               false, // not a peer address: refuse
		"":                        false,
	} {
		if got := allowed(remote, allow); got != want {
			t.Errorf("allowed(%q) = %v, want %v", remote, got, want)
		}
	}
}

func TestBindErrorNamesTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()

	s, err := Start(Options{Listen: addr})
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatalf("Start on busy %s succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q: want it to name %s and be EADDRINUSE", err, addr)
	}
}

func TestShutdownDoesNotWaitForeverForAStuckRequest(t *testing.T) {
	entered := make(chan struct{})
	s, err := Start(Options{Listen: "127.0.0.1:0", Ready: func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	reqDone := make(chan error, 1)
	go func() {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stuck request: %v, want deadline exceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	select {
	case <-reqDone:
	case <-time.After(3 * time.Second):
		t.Error("the stuck request was not ended by Shutdown")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after Shutdown")
	}
}
