package notify

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// request is what a test server saw.
type request struct {
	method, path, query, ctype, agent string
	body                              []byte
}

// recorder is a test server that records requests and answers with the
// statuses it is given, in order (the last one repeats; default 200).
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []request
	statuses []int
	body     string
}

func newRecorder(t *testing.T, statuses ...int) *recorder {
	t.Helper()
	rec := &recorder{statuses: statuses}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), b})
		status := http.StatusOK
		if n := len(rec.reqs); len(rec.statuses) > 0 {
			status = rec.statuses[min(n, len(rec.statuses))-1]
		}
		body := rec.body
		rec.mu.Unlock()
		if body == "" {
			body = http.StatusText(status)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func secrets(urls ...string) []config.Secret {
	var s []config.Secret
	for _, u := range urls {
		s = append(s, config.NewSecret(u))
	}
	return s
}

// pingJob is a job whose ping_url is u, http:// allowed (test servers).
func pingJob(u string) *config.Job {
	return &config.Job{Name: "app", PingURL: config.NewSecret(u), PingInsecureHTTP: true}
}

// fast keeps retries quick in tests.
func fast(extra ...Option) []Option {
	return append([]Option{WithRetry(3, time.Millisecond), WithTimeout(2 * time.Second), WithVersion("1.2.3")}, extra...)
}

var failedEvent = Event{
	Time:         time.Date(2026, 11, 23, 2, 0, 41, 0, time.FixedZone("CET", 3600)),
	Kind:         "backup",
	Job:          "app",
	BackupID:     "20261123T020000Z-7f3a",
	Outcome:      "partial",
	Message:      "1 of 2 destinations failed",
	Destinations: map[string]string{"primary": "ok", "offsite": "connection refused"},
	Host:         "db1",
}

func TestWebhookBody(t *testing.T) {
	srv := newRecorder(t)
	n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL + "/hook")}, nil, fast()...)
	if err := n.Send(context.Background(), failedEvent); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/hook" || r.ctype != "application/json" || r.agent != "coffer/1.2.3" {
		t.Errorf("got %s %s, Content-Type %q, User-Agent %q", r.method, r.path, r.ctype, r.agent)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	want := map[string]any{
		"time":         "2026-11-23T01:00:41Z",
		"kind":         "backup",
		"job":          "app",
		"backup_id":    "20261123T020000Z-7f3a",
		"outcome":      "partial",
		"message":      "1 of 2 destinations failed",
		"destinations": map[string]any{"primary": "ok", "offsite": "connection refused"},
		"host":         "db1",
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("body\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestWebhookBodyEmptyFieldsPresent(t *testing.T) {
	srv := newRecorder(t)
	n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL)}, nil, fast()...)
	if err := n.Send(context.Background(), Event{Kind: "sweep", Outcome: "failed", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(srv.requests()[0].body, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "kind", "job", "backup_id", "outcome", "message", "destinations", "host"} {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing from %v", k, got)
		}
	}
	if d, ok := got["destinations"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("destinations = %#v, want {}", got["destinations"])
	}
	if ts, _ := got["time"].(string); ts == "" || ts == "0001-01-01T00:00:00Z" {
		t.Errorf("time = %q, want the send time", ts)
	}
}

func TestSlackText(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"failed", Event{Kind: "backup", Job: "app", Outcome: "failed", Host: "host",
			Destinations: map[string]string{"offsite": "connection refused"}},
			":x: coffer backup app FAILED on host: offsite: connection refused"},
		{"partial", failedEvent,
			":warning: coffer backup app PARTIAL on db1 (20261123T020000Z-7f3a): 1 of 2 destinations failed; offsite: connection refused"},
		{"ok", Event{Kind: "drill", Job: "app", Outcome: "ok", Host: "db1", Message: "restored in 3m, RTO 8h"},
			":white_check_mark: coffer drill app OK on db1: restored in 3m, RTO 8h"},
		{"one line, escaped", Event{Kind: "prune", Outcome: "failed", Host: "db1", Message: "list <b>\n & retry"},
			":x: coffer prune FAILED on db1: list &lt;b&gt; &amp; retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t)
			n := New(config.Notify{InsecureHTTP: true, OnSuccess: true, Slack: secrets(srv.URL)}, nil, fast()...)
			if err := n.Send(context.Background(), tt.ev); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			var msg map[string]string
			if err := json.Unmarshal(reqs[0].body, &msg); err != nil {
				t.Fatal(err)
			}
			if len(msg) != 1 || msg["text"] != tt.want {
				t.Errorf("got %q\nwant text %q", reqs[0].body, tt.want)
			}
		})
	}
}

func TestPingPaths(t *testing.T) {
	tests := []struct {
		outcome Outcome
		want    string
	}{
		{"started", "/ping/abc/start"},
		{"ok", "/ping/abc"},
		{"failed", "/ping/abc/fail"},
		{"partial", "/ping/abc/fail"},
	}
	for _, base := range []string{"/ping/abc", "/ping/abc/"} {
		for _, tt := range tests {
			srv := newRecorder(t)
			n := New(config.Notify{InsecureHTTP: true}, nil, fast()...)
			if err := n.Ping(context.Background(), pingJob(srv.URL+base+"?rid=1"), tt.outcome); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 || reqs[0].path != tt.want || reqs[0].query != "rid=1" || reqs[0].agent != "coffer/1.2.3" {
				t.Errorf("ping %s to %s: got %+v, want one request to %s?rid=1", tt.outcome, base, reqs, tt.want)
			}
			if len(reqs) == 1 && !strings.Contains(string(reqs[0].body), string(tt.outcome)) {
				t.Errorf("ping body %q does not say %s", reqs[0].body, tt.outcome)
			}
		}
	}
	n := New(config.Notify{InsecureHTTP: true}, nil, fast()...)
	if err := n.Ping(context.Background(), &config.Job{Name: "app"}, "ok"); err != nil {
		t.Errorf("ping without URL: %v", err)
	}
}

func TestOnSuccess(t *testing.T) {
	for _, onSuccess := range []bool{false, true} {
		for _, outcome := range []Outcome{"ok", "partial", "failed", "started"} {
			hook, slack := newRecorder(t), newRecorder(t)
			n := New(config.Notify{InsecureHTTP: true, OnSuccess: onSuccess, Webhooks: secrets(hook.URL), Slack: secrets(slack.URL)}, nil, fast()...)
			ev := failedEvent
			ev.Outcome = outcome
			if err := n.Send(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			want := 1
			if outcome == "started" || (outcome == "ok" && !onSuccess) {
				want = 0
			}
			if h, s := len(hook.requests()), len(slack.requests()); h != want || s != want {
				t.Errorf("on_success %v, outcome %s: webhook got %d, slack got %d requests, want %d", onSuccess, outcome, h, s, want)
			}
		}
	}
}

func TestRetryThenSuccess(t *testing.T) {
	for _, status := range []int{500, 503, 429} {
		srv := newRecorder(t, status, status, 200)
		n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL)}, nil, fast()...)
		if err := n.Send(context.Background(), failedEvent); err != nil {
			t.Errorf("status %d twice then 200: %v", status, err)
		}
		if got := len(srv.requests()); got != 3 {
			t.Errorf("status %d twice then 200: %d requests, want 3", status, got)
		}
	}
}

func TestRetryGivesUp(t *testing.T) {
	srv := newRecorder(t, 502)
	n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL)}, nil, fast()...)
	err := n.Send(context.Background(), failedEvent)
	if err == nil || !strings.Contains(err.Error(), "webhook[0]") || !strings.Contains(err.Error(), "502") {
		t.Errorf("got error %v, want webhook[0] with HTTP 502", err)
	}
	if got := len(srv.requests()); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
}

func TestRetryOnNetworkError(t *testing.T) {
	// A server that hangs up on every connection before answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	n := New(config.Notify{InsecureHTTP: true, Slack: secrets("http://" + ln.Addr().String() + "/x")}, nil, fast()...)
	if err := n.Send(context.Background(), failedEvent); err == nil || !strings.Contains(err.Error(), "slack[0]") {
		t.Errorf("got error %v, want one naming slack[0]", err)
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("%d connections, want 3 attempts", got)
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	for _, status := range []int{400, 404} {
		srv := newRecorder(t, status, 200)
		n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL)}, nil, fast()...)
		err := n.Send(context.Background(), failedEvent)
		if err == nil || !strings.Contains(err.Error(), http.StatusText(status)) {
			t.Errorf("status %d: got error %v, want it reported", status, err)
		}
		if got := len(srv.requests()); got != 1 {
			t.Errorf("status %d: %d requests, want 1 (no retry)", status, got)
		}
	}
}

// hanging returns a server that never answers until the test ends.
func hanging(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestTimeoutBoundsSend(t *testing.T) {
	srv := hanging(t)
	ok := newRecorder(t)
	const bound = 300 * time.Millisecond
	n := New(config.Notify{InsecureHTTP: true,
		Webhooks: secrets(srv.URL+"/a", ok.URL),
		Slack:    secrets(srv.URL + "/b"),
	}, nil, WithTimeout(bound), WithRetry(3, time.Millisecond))
	start := time.Now()
	err := n.Send(context.Background(), failedEvent)
	elapsed := time.Since(start)
	// The three targets go in parallel: the whole Send takes one bound,
	// not three.
	if elapsed > 2*bound {
		t.Errorf("Send took %s, want about %s", elapsed, bound)
	}
	if err == nil || !strings.Contains(err.Error(), "webhook[0]: timed out") || !strings.Contains(err.Error(), "slack[0]: timed out") {
		t.Errorf("got error %v, want webhook[0] and slack[0] timed out", err)
	}
	if strings.Contains(err.Error(), "webhook[1]") {
		t.Errorf("working target reported as failed: %v", err)
	}
	if len(ok.requests()) != 1 {
		t.Errorf("working target got %d requests, want 1", len(ok.requests()))
	}

	start = time.Now()
	if err := n.Ping(context.Background(), pingJob(srv.URL), "ok"); err == nil {
		t.Error("ping to a hanging server succeeded")
	}
	if elapsed := time.Since(start); elapsed > 2*bound {
		t.Errorf("Ping took %s, want about %s", elapsed, bound)
	}
}

func TestErrorsHideURLs(t *testing.T) {
	const token = "xoxb-SECRET-TOKEN-123"
	const query = "sig=QUERY-SECRET-456"
	// A server that echoes the request URL back in its error page.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "bad request to "+r.URL.String())
	}))
	t.Cleanup(echo.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close() // now nothing listens: connection refused, a *url.Error
	hang := hanging(t)

	urls := []string{
		echo.URL + "/services/" + token + "?" + query,
		refused + "/services/" + token + "?" + query,
		hang.URL + "/services/" + token + "?" + query,
		"http://user:" + token + "@" + ln.Addr().String() + "/?" + query,
		"http://bad host/" + token + "?" + query,
	}
	core, logs := observer.New(zap.DebugLevel)
	n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(urls...), Slack: secrets(urls...)}, zap.New(core),
		WithTimeout(300*time.Millisecond), WithRetry(2, time.Millisecond))
	err = n.Send(context.Background(), failedEvent)
	if err == nil {
		t.Fatal("Send to failing targets succeeded")
	}
	for i := range urls {
		for _, kind := range []string{"webhook", "slack"} {
			name := kind + "[" + string(rune('0'+i)) + "]"
			if !strings.Contains(err.Error(), name+":") {
				t.Errorf("error does not report %s: %v", name, err)
			}
		}
	}
	pingErr := n.Ping(context.Background(), pingJob(urls[1]), "failed")
	if pingErr == nil || !strings.HasPrefix(pingErr.Error(), "ping: ") {
		t.Errorf("ping to a refused port: got %v, want a ping error", pingErr)
	}

	var logged strings.Builder
	for _, e := range logs.All() {
		logged.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			logged.WriteString(" " + k + "=")
			b, _ := json.Marshal(v)
			logged.Write(b)
		}
		logged.WriteString("\n")
	}
	if logs.Len() == 0 {
		t.Error("no retries were logged")
	}
	for what, text := range map[string]string{"Send error": err.Error(), "Ping error": pingErr.Error(), "log": logged.String()} {
		for _, secret := range []string{token, query, "QUERY-SECRET", "/services/", echo.URL, refused, hang.URL} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %q:\n%s", what, secret, text)
			}
		}
	}
}

func TestSendCancelled(t *testing.T) {
	srv := hanging(t)
	n := New(config.Notify{InsecureHTTP: true, Webhooks: secrets(srv.URL)}, nil, fast()...)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := n.Send(ctx, failedEvent)
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("got %v, want webhook[0] cancelled", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Send kept going %s after cancellation", elapsed)
	}
}

// TestPlainHTTPRefused: without notify.insecure_http (or the job's
// ping_insecure_http) an http:// webhook, Slack or ping URL is never
// sent to, and the error names the setting; an https:// one is.
func TestPlainHTTPRefused(t *testing.T) {
	plain := newRecorder(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	n := New(config.Notify{Webhooks: secrets(plain.URL+"/hook", tlsSrv.URL+"/hook"), Slack: secrets(plain.URL + "/slack")}, nil,
		fast(WithHTTPClient(tlsSrv.Client()))...)
	err := n.Send(context.Background(), failedEvent)
	if err == nil || !strings.Contains(err.Error(), "webhook[0]: http:// URL refused") || !strings.Contains(err.Error(), "slack[0]: http:// URL refused") ||
		!strings.Contains(err.Error(), "notify.insecure_http: true") || strings.Contains(err.Error(), "webhook[1]") {
		t.Errorf("Send: %v; want webhook[0] and slack[0] refused naming notify.insecure_http, webhook[1] (https) delivered", err)
	}
	err = n.Ping(context.Background(), &config.Job{Name: "app", PingURL: config.NewSecret(plain.URL + "/ping")}, "ok")
	if err == nil || !strings.Contains(err.Error(), "ping: http:// URL refused") || !strings.Contains(err.Error(), "jobs.app.ping_insecure_http: true") {
		t.Errorf("Ping: %v; want refused naming jobs.app.ping_insecure_http", err)
	}
	if reqs := plain.requests(); len(reqs) != 0 {
		t.Errorf("the http:// receiver got %d requests, want none", len(reqs))
	}
}

// TestRedirectNotFollowed: a receiver answering 302 or 307 with a Location
// on another server is a failed delivery, reported with the status; the
// other server receives nothing (not the event, not the ping).
func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		elsewhere := newRecorder(t)
		redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/stolen", status)
		}))
		t.Cleanup(redirector.Close)
		n := New(config.Notify{Webhooks: secrets(redirector.URL + "/hook"), Slack: secrets(redirector.URL + "/slack")}, nil,
			fast(WithHTTPClient(redirector.Client()))...)
		err := n.Send(context.Background(), failedEvent)
		want := "HTTP " + strconv.Itoa(status)
		if err == nil || !strings.Contains(err.Error(), "webhook[0]: "+want) || !strings.Contains(err.Error(), "slack[0]: "+want) ||
			!strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("Send to a %d: %v; want both targets failed with the status", status, err)
		}
		err = n.Ping(context.Background(), &config.Job{Name: "app", PingURL: config.NewSecret(redirector.URL + "/ping")}, "failed")
		if err == nil || !strings.Contains(err.Error(), "ping: "+want) {
			t.Errorf("Ping to a %d: %v; want failed with the status", status, err)
		}
		if reqs := elsewhere.requests(); len(reqs) != 0 {
			t.Errorf("%d: the redirect's target got %d requests (%+v), want none", status, len(reqs), reqs)
		}
	}
}
