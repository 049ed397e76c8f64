package monitor

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
)

// readyTimeout bounds one call of Options.Ready.
const readyTimeout = 5 * time.Second

// Options configure the server.
type Options struct {
	// Listen is the host:port to listen on (config's daemon.listen; the
	// caller handles "off" by not starting the server). Port 0 picks a
	// free port; see Server.Addr.
	Listen string
	// Token, when set, must be sent as "Authorization: Bearer TOKEN" on
	// every request.
	Token config.Secret
	// Allow, when non-empty, lists the networks a client's address must be
	// in; others get 403.
	Allow []netip.Prefix
	// Gatherer provides /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Ready reports whether the daemon can do its work (nil: always
	// ready). Its error text is sent to the client as is, so it must not
	// contain secrets: name the failing part, not its credentials or URL
	// query.
	Ready func(ctx context.Context) error
	// Page, when set, serves the daemon's page: GET / and GET
	// /download/... . Browsers log in with the token through the login
	// form (POST /login) and get a session cookie; see the package doc.
	Page http.Handler
	// Log receives start-up, refusal (debug), login (info) and server
	// errors; nil discards them.
	Log *zap.Logger
}

// Server is a running monitor server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on opts.Listen and serves in the background until
// Shutdown. It returns an error naming the address when it cannot listen.
func Start(opts Options) (*Server, error) {
	if opts.Listen == "" {
		return nil, errors.New("monitor: no listen address")
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	errLog, err := zap.NewStdLogAt(log, zap.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		// net.OpError repeats the address in its own words; keep the cause.
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("monitor: listen on %s: %w", opts.Listen, err)
	}
	s := &Server{
		ln:   ln,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           handler(opts, log, errLog),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("monitor server stopped", zap.String("addr", s.Addr()), zap.Error(err))
		}
	}()
	log.Info("monitor listening", zap.String("addr", s.Addr()),
		zap.Bool("token", !opts.Token.IsZero()), zap.Int("allow", len(opts.Allow)))
	return s, nil
}

// Addr returns the address the server listens on, with the actual port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and waits for requests in progress
// until ctx ends; then it closes the remaining connections and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}

// handler is the routes behind access control.
func handler(opts Options, log *zap.Logger, errLog promhttp.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if opts.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := opts.Ready(ctx); err != nil {
				text(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		text(w, http.StatusOK, "ready")
	})
	g := opts.Gatherer
	if g == nil {
		g = prometheus.Gatherers{}
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            errLog,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             20 * time.Second,
	}))
	gt := newGate(opts, log, mux)
	if opts.Page != nil {
		mux.Handle("GET /{$}", opts.Page)
		mux.Handle("GET /download/", opts.Page)
		mux.HandleFunc("POST /login", gt.login)
		mux.HandleFunc("POST /logout", gt.logout)
	}
	return gt
}

// gate applies the address allow list and the token (or a browser
// session) to every request.
type gate struct {
	allow    []netip.Prefix
	hasToken bool
	want     [sha256.Size]byte // the token's SHA-256
	page     bool              // a page is served: sessions and the login form
	sessions *sessions
	log      *zap.Logger
	next     http.Handler
}

func newGate(opts Options, log *zap.Logger, next http.Handler) *gate {
	g := &gate{allow: opts.Allow, hasToken: !opts.Token.IsZero(), page: opts.Page != nil,
		sessions: newSessions(nil), log: log, next: next}
	if g.hasToken {
		g.want = sha256.Sum256([]byte(opts.Token.Reveal()))
	}
	return g
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(g.allow) > 0 && !allowed(r.RemoteAddr, g.allow) {
		g.log.Debug("monitor: client address not allowed", zap.String("remote", r.RemoteAddr))
		text(w, http.StatusForbidden, "forbidden")
		return
	}
	if !g.hasToken {
		g.next.ServeHTTP(w, r)
		return
	}
	if g.page && r.Method == http.MethodPost && (r.URL.Path == "/login" || r.URL.Path == "/logout") {
		g.next.ServeHTTP(w, r) // they check the token, or need none
		return
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	// Hashing first makes the comparison constant-time whatever the
	// lengths.
	sum := sha256.Sum256([]byte(got))
	if ok && subtle.ConstantTimeCompare(sum[:], g.want[:]) == 1 {
		g.next.ServeHTTP(w, r)
		return
	}
	if !ok && g.page && g.sessions.valid(r) {
		g.next.ServeHTTP(w, r)
		return
	}
	challenge := `Bearer realm="coffer"`
	reason := "no bearer token"
	if ok {
		challenge += `, error="invalid_token"`
		reason = "wrong bearer token"
	}
	g.log.Debug("monitor: "+reason, zap.String("remote", r.RemoteAddr))
	w.Header().Set("WWW-Authenticate", challenge)
	if ok || !g.page || monitorPath(r.URL.Path) {
		text(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if _, err := r.Cookie(SessionCookie); err == nil {
		http.SetCookie(w, cookie(r, "", time.Time{}, 0)) // expired or unknown
	}
	serveLogin(w, http.StatusUnauthorized, false)
}

// monitorPath reports whether path is one of the endpoints for machines,
// which answer a refusal in plain text, not with the login form.
func monitorPath(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// allowed reports whether the peer address remote ("ip:port") is in one of
// the prefixes. IPv4 peers seen on an IPv6 socket (::ffff:a.b.c.d) count
// as IPv4; zones are ignored.
func allowed(remote string, allow []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// text writes a short plain-text response that no cache keeps.
func text(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}
