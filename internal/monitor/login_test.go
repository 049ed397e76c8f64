package monitor

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coffer-backup/coffer/config"
)

// pageBody is what the stub page serves; it must never reach a client
// that is not signed in.
const pageBody = "the daemon's page: jobs, backups, drills"

var stubPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, pageBody)
})

// noRedirect does not follow redirects, so that a test sees the 303 and
// its Set-Cookie.
var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// login posts the form with token to base/login, with extra headers.
func login(t *testing.T, base, token string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

// TestPageNeedsTheToken: without the token or a session, the page and its
// downloads answer 401 with the login form and nothing else (a token in
// the URL counts for nothing); a wrong token in the form is refused with
// a generic message and logged without the token; the right one opens a
// session whose cookie is HttpOnly, SameSite=Strict, Path=/, expires in
// 12 h, holds a random id (not the token), and is Secure behind TLS. The
// session reads the page until sign-out; the Bearer header reads it too.
func TestPageNeedsTheToken(t *testing.T) {
	const token = "s3cret-page-token"
	core, logs := observer.New(zapcore.DebugLevel)
	_, base := start(t, Options{Token: config.NewSecret(token), Page: stubPage, Log: zap.New(core)})

	for _, path := range []string{"/", "/download/report.csv", "/download/audit.csv", "/?token=" + token, "/nope"} {
		r := get(t, base+path)
		if r.code != http.StatusUnauthorized || strings.Contains(r.body, pageBody) ||
			!strings.Contains(r.body, `<form method="post" action="/login" id="login">`) || strings.Contains(r.body, "login-error") {
			t.Errorf("GET %s without a session: %d %q, want 401 and only the login form", path, r.code, r.body)
		}
		if csp := r.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: login form's CSP %q", path, csp)
		}
	}
	// Machines still get a plain refusal.
	if r := get(t, base+"/metrics"); r.code != http.StatusUnauthorized || r.body != "unauthorized\n" {
		t.Errorf("GET /metrics without a token: %d %q, want a plain 401", r.code, r.body)
	}

	for _, wrong := range []string{"", "not-the-token", token + "x", "s3cret"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"token": {wrong}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || sessionCookie(resp) != nil ||
			!strings.Contains(body, "Not signed in: the token is not right.") || strings.Contains(body, pageBody) {
			t.Errorf("login with token %q: %d, cookie %v, body %q; want 401, no cookie, the generic message", wrong, resp.StatusCode, sessionCookie(resp), body)
		}
	}
	for _, e := range logs.All() {
		if s := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(s, "s3cret") || strings.Contains(s, "not-the-token") {
			t.Errorf("log entry shows a token: %s", s)
		}
	}
	if logs.FilterMessage("monitor: login refused: wrong token").Len() != 4 {
		t.Errorf("want each refused login logged")
	}

	resp := login(t, base, token)
	c := sessionCookie(resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || c == nil {
		t.Fatalf("login with the token: %d to %q, cookie %v; want 303 to / with a session cookie", resp.StatusCode, resp.Header.Get("Location"), c)
	}
	raw := resp.Header.Get("Set-Cookie")
	for _, flag := range []string{"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200", "Expires="} {
		if !strings.Contains(raw, flag) {
			t.Errorf("Set-Cookie %q lacks %s", raw, flag)
		}
	}
	if strings.Contains(raw, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP: the browser would never send it back", raw)
	}
	if strings.Contains(c.Value, token) || len(c.Value) < 40 {
		t.Errorf("cookie value %q: want a long random id, not the token", c.Value)
	}
	if until := time.Until(c.Expires); until < SessionTTL-time.Minute || until > SessionTTL+time.Minute {
		t.Errorf("cookie expires in %v, want %v", until, SessionTTL)
	}
	if tls := sessionCookie(login(t, base, token, "X-Forwarded-Proto: https")); tls == nil || !tls.Secure {
		t.Errorf("login behind a TLS proxy: cookie %v, want Secure", tls)
	}

	cookie := "Cookie: " + SessionCookie + "=" + c.Value
	for _, path := range []string{"/", "/download/report.csv"} {
		if r := get(t, base+path, cookie); r.code != http.StatusOK || r.body != pageBody {
			t.Errorf("GET %s with the session: %d %q, want the page", path, r.code, r.body)
		}
	}
	if r := get(t, base+"/", "Authorization: Bearer "+token); r.code != http.StatusOK || r.body != pageBody {
		t.Errorf("GET / with the Bearer token: %d %q, want the page", r.code, r.body)
	}
	if r := get(t, base+"/", "Cookie: "+SessionCookie+"=forged"+c.Value[6:]); r.code != http.StatusUnauthorized || strings.Contains(r.body, pageBody) {
		t.Errorf("GET / with a forged session id: %d, want 401", r.code)
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/logout", nil)
	req.AddCookie(c)
	out, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if gone := sessionCookie(out); out.StatusCode != http.StatusSeeOther || gone == nil || gone.MaxAge >= 0 {
		t.Errorf("logout: %d, cookie %v; want 303 and the cookie deleted", out.StatusCode, gone)
	}
	if r := get(t, base+"/", cookie); r.code != http.StatusUnauthorized || strings.Contains(r.body, pageBody) {
		t.Errorf("GET / with the session after sign-out: %d, want 401 and the login form", r.code)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPageWithoutToken: with no token configured the page is open, like
// /metrics, to every allowed address, and the login form is not used.
func TestPageWithoutToken(t *testing.T) {
	_, base := start(t, Options{Page: stubPage})
	if r := get(t, base+"/"); r.code != http.StatusOK || r.body != pageBody {
		t.Errorf("GET / without a token configured: %d %q, want the page", r.code, r.body)
	}
	if resp := login(t, base, "anything"); resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) != nil {
		t.Errorf("login without a token configured: %d, want 303 to / and no session", resp.StatusCode)
	}
}

// TestSessionExpires: a session id is refused once its 12 hours are over,
// and the oldest session goes when the table is full.
func TestSessionExpires(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	s := newSessions(func() time.Time { return now })
	s.size = 2
	withCookie := func(id string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
		return r
	}
	a, exp := s.create()
	if !exp.Equal(now.Add(SessionTTL)) || !s.valid(withCookie(a)) {
		t.Fatalf("new session: expiry %v, valid %v", exp, s.valid(withCookie(a)))
	}
	now = now.Add(time.Minute)
	b, _ := s.create()
	now = now.Add(time.Minute)
	c, _ := s.create() // the table holds 2: a, the oldest, goes
	if s.valid(withCookie(a)) || !s.valid(withCookie(b)) || !s.valid(withCookie(c)) {
		t.Errorf("full table: want the oldest session dropped and the others kept")
	}
	now = now.Add(SessionTTL)
	if s.valid(withCookie(b)) || s.valid(withCookie(c)) {
		t.Errorf("sessions still valid after %v", SessionTTL)
	}
}
