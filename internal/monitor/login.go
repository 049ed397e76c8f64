package monitor

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// maxLoginBody bounds the login form's body.
const maxLoginBody = 4 << 10

// loginForm is the only page served without the token. It names nothing
// of the installation: no host, job or destination.
var loginForm = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Coffer: sign in</title>
<style nonce="{{.Nonce}}">
body { font: 16px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; color: #212121; margin: 0; padding: 16px; }
main { max-width: 26em; margin: 10vh auto 0; }
h1 { font-size: 22px; margin: 0 0 8px; }
label { display: block; margin: 16px 0 4px; font-weight: 600; }
input[type=password] { width: 100%; font: inherit; padding: 8px; border: 1px solid #9e9e9e; border-radius: 4px; box-sizing: border-box; }
button { margin-top: 12px; font: inherit; padding: 8px 18px; border: 0; border-radius: 4px; background: #2e7d32; color: #fff; cursor: pointer; }
p.error { color: #c62828; font-weight: 600; }
p.meta { color: #555; font-size: 14px; }
</style>
</head>
<body>
<main>
<h1>Coffer</h1>
<p class="meta">This page is read-only. Sign in with the daemon's token (<code>daemon.token</code> in the configuration).</p>
{{- if .Failed}}
<p class="error" id="login-error" role="alert">Not signed in: the token is not right.</p>
{{- end}}
<form method="post" action="/login" id="login">
<label for="token">Token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`))

// NewNonce returns a fresh random value for a Content-Security-Policy nonce.
func NewNonce() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// PageHeaders sets the headers of every HTML page the server sends: a
// Content-Security-Policy that allows only the inline style sheet with
// the given nonce and data: images (no script, no request elsewhere, no
// framing, forms to this server only), no MIME sniffing, no Referer, no
// caching.
func PageHeaders(h http.Header, nonce string) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

// serveLogin sends the login form with status code; failed adds the
// generic "not right" message.
func serveLogin(w http.ResponseWriter, code int, failed bool) {
	n := NewNonce()
	h := w.Header()
	PageHeaders(h, n)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	loginForm.Execute(w, struct {
		Nonce  string
		Failed bool
	}{n, failed})
}

// login handles POST /login: the token from the form, compared in
// constant time, opens a session (303 to /); a wrong or missing token
// gets the form again with 401. The token is never logged.
func (g *gate) login(w http.ResponseWriter, r *http.Request) {
	if !g.hasToken {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		g.log.Debug("monitor: unreadable login form", zap.String("remote", r.RemoteAddr))
		serveLogin(w, http.StatusBadRequest, true)
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("token")))
	if subtle.ConstantTimeCompare(sum[:], g.want[:]) != 1 {
		g.log.Info("monitor: login refused: wrong token", zap.String("remote", r.RemoteAddr))
		serveLogin(w, http.StatusUnauthorized, true)
		return
	}
	g.sessions.end(r) // a new id at each login (no session fixation)
	id, exp := g.sessions.create()
	http.SetCookie(w, cookie(r, id, exp, int(g.sessions.ttl.Seconds())))
	g.log.Info("monitor: browser session opened", zap.String("remote", r.RemoteAddr))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout handles POST /logout: the session ends and its cookie is
// deleted; 303 to /, which then shows the login form.
func (g *gate) logout(w http.ResponseWriter, r *http.Request) {
	g.sessions.end(r)
	http.SetCookie(w, cookie(r, "", time.Time{}, 0))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
