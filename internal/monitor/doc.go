// Package monitor is the daemon's small HTTP server: health, readiness,
// Prometheus metrics, and the door to the daemon's page (internal/page):
// the allow list, the token, and browser sessions.
//
// Routes (GET or HEAD; any other method gets 405, any other path 404):
//
//	/healthz  200 "ok" while the process serves requests (liveness)
//	/readyz   200 "ready", or 503 "not ready: " and the error Options.Ready
//	          returned; Ready gets a context that ends after 5 seconds
//	/metrics  the Options.Gatherer's metrics in the Prometheus formats
//
// With Options.Page set, also (for people, in a browser):
//
//	GET  /            the page (Options.Page), and GET /download/... its
//	                  downloads
//	POST /login       the token from the login form opens a session:
//	                  303 to /, with the session cookie
//	POST /logout      ends the session and deletes its cookie: 303 to /
//
// Guarantees:
//   - Access control runs before routing, on every request, so a client
//     that is refused learns nothing, not even which paths exist:
//     first the client address (403 unless it is in Options.Allow, when
//     Allow is set), then the token (401 with WWW-Authenticate unless the
//     request carries "Authorization: Bearer TOKEN", when Token is set).
//   - The client address is the TCP peer's (http.Request.RemoteAddr).
//     X-Forwarded-For, X-Real-IP and Forwarded are ignored: behind a proxy,
//     allow the proxy's address and use the token.
//   - A browser presents the token once, in the login form's POST body
//     (never in a URL); the answer is a cookie (SessionCookie) holding a
//     random 256-bit session id, not the token: HttpOnly, SameSite=Strict,
//     Path=/, expiring after SessionTTL (12 h), and Secure when the
//     request came over TLS or a proxy says X-Forwarded-Proto: https.
//     A live session authorizes like the token. Sessions are kept in
//     memory (a restart signs everyone out) and end on POST /logout.
//   - Without the token or a session, the page's paths answer 401 with the
//     login form and nothing else; /healthz, /readyz and /metrics answer a
//     plain 401 as before. A wrong token in the form gets 401 and a
//     generic message, and is logged (info) with the peer address only.
//     With no token configured, the page is open to allowed addresses,
//     as /metrics is.
//   - The token is compared in constant time and never logged or echoed.
//   - The server does not log request paths or headers; refusals are
//     logged at debug level with the peer address and the reason.
//   - The connection has read, write and idle timeouts, so a slow or idle
//     client cannot hold it forever.
//
// HTML pages are sent with a Content-Security-Policy that allows only
// their inline style sheet (PageHeaders): no script, no request elsewhere,
// no framing.
//
// It serves plain HTTP: listen on loopback or a private network, or put a
// TLS proxy in front.
package monitor
