package page

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/monitor"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/report"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// Window bounds, in weeks.
const (
	DefaultWeeks = 12
	MaxWeeks     = 104
)

// Defaults of Options.
const (
	DefaultTTL     = 60 * time.Second
	DefaultTimeout = 2 * time.Minute
	DefaultWait    = 20 * time.Second
)

// Options configure the page.
type Options struct {
	// Config returns the running configuration (it changes on SIGHUP).
	Config func() *config.Config
	// StateDir is the daemon's state directory: its local audit log is
	// part of the audit trail the report reads.
	StateDir string
	// Protected says a token guards the page (a sign-out button is
	// shown); without one the page warns that anyone allowed to connect
	// can read it.
	Protected bool
	// TTL is how long a gathered window is reused (DefaultTTL when 0).
	TTL time.Duration
	// Timeout bounds one gather or audit export (DefaultTimeout when 0).
	Timeout time.Duration
	// Wait is how long a request waits for a gather before it is told to
	// come back (DefaultWait when 0).
	Wait time.Duration
	// Now is the clock; nil means internal/clock.Now.
	Now func() time.Time
	// Log receives the page's errors; nil discards them.
	Log *zap.Logger

	// gather replaces report.Gather in tests.
	gather gatherFunc
}

// Handler serves the page (GET /) and its downloads (GET /download/...).
// Access control is the monitor server's, in front of it.
type Handler struct {
	o     Options
	cache *cache
	mux   *http.ServeMux
	host  string
}

//go:embed page.html.tmpl
var pageSource string

// pageTemplate is the report's templates plus the page: the page shows
// the report's own "job" sections and style sheet.
var pageTemplate = func() *template.Template {
	t := report.HTMLTemplate()
	return template.Must(t.New("page").Parse(pageSource))
}()

// New returns the page's handler.
func New(o Options) *Handler {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.host, _ = os.Hostname()
	g := o.gather
	if g == nil {
		g = h.gatherReport
	}
	h.cache = newCache(g, o.TTL, o.Timeout, o.Now)
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /download/report.html", h.download("html", "text/html; charset=utf-8", report.WriteHTML))
	h.mux.HandleFunc("GET /download/report.csv", h.download("csv", "text/csv; charset=utf-8", report.WriteCSV))
	h.mux.HandleFunc("GET /download/report.json", h.download("json", "application/json", report.WriteJSON))
	h.mux.HandleFunc("GET /download/audit.csv", h.auditCSV)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// gatherReport is report.Gather of every job, as `coffer report` does it.
func (h *Handler) gatherReport(ctx context.Context, cfg *config.Config, weeks int) (report.Input, error) {
	jobs := make([]*config.Job, 0, len(cfg.JobOrder))
	for _, name := range cfg.JobOrder {
		jobs = append(jobs, cfg.Jobs[name])
	}
	in, err := report.Gather(ctx, cfg, jobs, report.Options{
		Now:      h.o.Now(),
		Since:    time.Duration(weeks) * 7 * config.Day,
		AuditLog: h.auditLog(),
		Trust:    manifest.ConfiguredTrust(cfg.Signing),
	})
	if err != nil {
		h.o.Log.Warn("page: report not gathered", zap.Int("weeks", weeks), zap.Error(err))
	}
	return in, err
}

func (h *Handler) auditLog() string {
	if h.o.StateDir == "" {
		return ""
	}
	return filepath.Join(h.o.StateDir, audit.FileName)
}

// weeks reads the window from ?weeks=N.
func weeks(r *http.Request) (int, error) {
	s := r.URL.Query().Get("weeks")
	if s == "" {
		return DefaultWeeks, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxWeeks {
		if len(s) > 24 {
			s = s[:24] + "..."
		}
		return 0, fmt.Errorf("weeks=%q: want a whole number of weeks from 1 to %d, e.g. ?weeks=%d", s, MaxWeeks, DefaultWeeks)
	}
	return n, nil
}

// snapshot returns the window's snapshot, or writes the error response
// and returns nil.
func (h *Handler) snapshot(w http.ResponseWriter, r *http.Request) (*snapshot, int) {
	n, err := weeks(r)
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return nil, 0
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Wait)
	defer cancel()
	snap, err := h.cache.get(ctx, h.o.Config(), n)
	if err != nil {
		h.unavailable(w, err)
		return nil, 0
	}
	return snap, n
}

func (h *Handler) unavailable(w http.ResponseWriter, err error) {
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "30")
		text(w, http.StatusServiceUnavailable, err.Error()+"; reload in a minute")
		return
	}
	text(w, http.StatusServiceUnavailable, "the report could not be gathered: "+err.Error())
}

// view is the page's data.
type view struct {
	Nonce     string
	Host      string
	Now       string
	Gathered  string
	TTL       string
	Weeks     int
	Protected bool
	Jobs      []jobView
	Report    *report.Report
}

// page serves GET /.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	snap, n := h.snapshot(w, r)
	if snap == nil {
		return
	}
	nonce := monitor.NewNonce()
	var buf bytes.Buffer
	if err := h.render(&buf, snap, n, nonce); err != nil {
		h.o.Log.Error("page not rendered", zap.Error(err))
		text(w, http.StatusInternalServerError, "the page could not be rendered")
		return
	}
	hd := w.Header()
	monitor.PageHeaders(hd, nonce)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// render writes the page of snap (a window of n weeks) with the style
// sheet's nonce.
func (h *Handler) render(w io.Writer, snap *snapshot, n int, nonce string) error {
	now := h.o.Now()
	return pageTemplate.ExecuteTemplate(w, "page", view{
		Nonce: nonce, Host: h.host, Now: stamp(now), Gathered: stamp(snap.at),
		TTL: h.o.TTL.String(), Weeks: n, Protected: h.o.Protected,
		Jobs: jobViews(snap.cfg, snap.in, now), Report: snap.rep,
	})
}

// download serves the report of the window in one format, as `coffer
// report --format` writes it.
func (h *Handler) download(ext, ctype string, write func(io.Writer, *report.Report) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap, n := h.snapshot(w, r)
		if snap == nil {
			return
		}
		var buf bytes.Buffer
		if err := write(&buf, snap.rep); err != nil {
			text(w, http.StatusInternalServerError, "the report could not be written: "+err.Error())
			return
		}
		name := fmt.Sprintf("coffer-report-%s-%dw.%s", snap.at.UTC().Format("2006-01-02"), n, ext)
		attachment(w, ctype, name)
		w.Write(buf.Bytes())
	}
}

// auditCSV serves the audit trail of the window as CSV, as `coffer
// audit --since` exports it: the local log and every destination the
// trail is shipped to, each event once.
func (h *Handler) auditCSV(w http.ResponseWriter, r *http.Request) {
	n, err := weeks(r)
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	cfg := h.o.Config()
	from := h.o.Now().Add(-time.Duration(n) * 7 * config.Day)
	var evs []audit.Event
	var readErr error
	wait, cancel := context.WithTimeout(r.Context(), h.o.Wait)
	defer cancel()
	err = h.cache.exclusive(wait, func(ctx context.Context) error {
		var stores []storage.Store
		for _, name := range audit.Destinations(cfg) {
			s, err := open.Store(ctx, cfg.Destinations[name])
			if err != nil {
				return fmt.Errorf("destination %s: %w", name, err)
			}
			stores = append(stores, s)
		}
		evs, readErr = audit.Read(ctx, h.auditLog(), stores, from)
		var disagree *audit.DisagreementError
		if errors.As(readErr, &disagree) {
			// Exported with the first copy, as coffer audit does.
			h.o.Log.Warn("page: audit trail copies differ; exported with the first copy (run coffer audit verify)", zap.Error(readErr))
			return nil
		}
		return readErr
	})
	if err != nil {
		if errors.Is(err, errBusy) {
			h.unavailable(w, err)
			return
		}
		text(w, http.StatusBadGateway, "the audit trail could not be read: "+err.Error())
		return
	}
	var buf bytes.Buffer
	if err := audit.WriteCSV(&buf, evs); err != nil {
		text(w, http.StatusInternalServerError, "the audit trail could not be written: "+err.Error())
		return
	}
	attachment(w, "text/csv; charset=utf-8", fmt.Sprintf("coffer-audit-%s-%dw.csv", h.o.Now().UTC().Format("2006-01-02"), n))
	w.Write(buf.Bytes())
}

// attachment sets the headers of a download.
func attachment(w http.ResponseWriter, ctype, name string) {
	hd := w.Header()
	// The HTML report's style sheet is inline without a nonce.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Type", ctype)
	hd.Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

// text writes a short plain-text response that no cache keeps.
func text(w http.ResponseWriter, code int, body string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}
