// Package monitor is the daemon's small HTTP server: health, readiness and
// Prometheus metrics.
//
// Routes (GET or HEAD; any other method gets 405, any other path 404):
//
//	/healthz  200 "ok" while the process serves requests (liveness)
//	/readyz   200 "ready", or 503 "not ready: " and the error Options.Ready
//	          returned; Ready gets a context that ends after 5 seconds
//	/metrics  the Options.Gatherer's metrics in the Prometheus formats
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
//   - The token is compared in constant time and never logged or echoed.
//   - The server does not log request paths or headers; refusals are
//     logged at debug level with the peer address and the reason.
//   - The connection has read, write and idle timeouts, so a slow or idle
//     client cannot hold it forever.
//
// It serves plain HTTP: listen on loopback or a private network, or put a
// TLS proxy in front.
package monitor
