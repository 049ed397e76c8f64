package page

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/report"
)

// testNow is the time of the fabricated histories: a Wednesday.
var testNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// fakeInstallation returns a configuration of jobs jobs (job00, job01,
// ...) on two local destinations and report input in which each job has
// backups weekly backups on both, the newest 3 days old, and a monthly
// drill of 40 minutes against an RTO of 8h. It reads no store.
func fakeInstallation(tb testing.TB, jobs, backups int) (*config.Config, report.Input) {
	tb.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, `recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
destinations:
  primary: {type: local, path: /srv/coffer/primary}
  offsite: {type: local, path: /srv/coffer/offsite}
daemon:
  listen: "off"
  state_dir: /var/lib/coffer
jobs:
`)
	for i := range jobs {
		fmt.Fprintf(&y, "  job%02d:\n    source: {type: sqlite, path: /srv/app%02d.db}\n", i, i)
	}
	cfg, err := config.Parse("/etc/coffer/coffer.yaml", []byte(y.String()))
	if err != nil {
		tb.Fatal(err)
	}
	in := report.Input{Now: testNow, Since: 12 * config.Week}
	for _, name := range cfg.JobOrder {
		ji := report.JobInput{Job: cfg.Jobs[name], Destinations: []report.DestinationInput{
			{Name: "primary", Role: report.RolePrimary}, {Name: "offsite", Role: report.RoleOffsite}}}
		for b := range backups {
			at := testNow.Add(-3*config.Day - time.Duration(b)*config.Week)
			id := at.UTC().Format("20060102T150405.000Z") + "-" + fmt.Sprintf("%04x", b)
			m := backuptest.Fake(tb, name, id, nil, "primary", "offsite")
			m.Sequence, m.SignedBy = int64(backups-b), "k1"
			for i := range ji.Destinations {
				ji.Destinations[i].Manifests = append(ji.Destinations[i].Manifests, m)
			}
		}
		for d := range 3 {
			end := testNow.Add(-time.Duration(d)*30*config.Day - 2*time.Hour)
			took := 40 * time.Minute
			ji.Drills = append(ji.Drills, &drill.Report{FormatVersion: drill.ReportFormatVersion,
				ID: end.Add(-took).UTC().Format("20060102T150405.000Z") + "-d1d1", Job: name, From: "offsite",
				Backup: ji.Destinations[1].Manifests[0].ID, Started: end.Add(-took), Finished: end,
				TotalSeconds: took.Seconds(), RTOSeconds: (8 * time.Hour).Seconds(), RTORatio: took.Seconds() / (8 * time.Hour).Seconds(),
				Result: drill.Passed, ManifestVerified: &verified, ManifestSignedBy: "k1", HeadroomBytes: 12 << 30})
		}
		in.Jobs = append(in.Jobs, ji)
	}
	return cfg, in
}

var verified = true

// fakeHandler is New with a gather that returns in and counts its calls.
func fakeHandler(cfg *config.Config, in report.Input, calls *atomic.Int32, now *atomic.Pointer[time.Time]) *Handler {
	return New(Options{
		Config: func() *config.Config { return cfg }, Protected: true,
		Now: func() time.Time { return *now.Load() },
		gather: func(ctx context.Context, _ *config.Config, weeks int) (report.Input, error) {
			calls.Add(1)
			in := in
			in.Since = time.Duration(weeks) * config.Week
			return in, nil
		},
	})
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// TestPage renders two jobs from fabricated input: the status of each
// job (newest backup per destination, drill against the RTO, restore
// command), the report's controls and charts, the security headers with
// a nonce that matches the style sheet's, and no script.
func TestPage(t *testing.T) {
	cfg, in := fakeInstallation(t, 2, 3)
	// job01's offsite holds a manifest that does not check out.
	in.Jobs[1].Destinations[1].Bad = []report.BadBackup{{ID: "20261101T000000.000Z-beef", Err: errors.New("signature does not verify")}}
	var calls atomic.Int32
	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	h := fakeHandler(cfg, in, &calls, &now)

	w := get(t, h, "/")
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("GET /: %d %s", w.Code, body)
	}
	csp := w.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`style-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(body, `<style nonce="`+m[1]+`">`) {
		t.Errorf("CSP %q: want a style nonce that the page's <style> carries", csp)
	}
	for _, d := range []string{"default-src 'none'", "img-src data:", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, bad := range []string{"<script", "src=", "url(", "@import", `href="http`, "https://"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %q: it must load nothing and run nothing", bad)
		}
	}
	for _, want := range []string{
		`<article class="glance" id="glance-job00">`, `<article class="glance" id="glance-job01">`,
		`<span class="took">40m</span> of the RTO 8h (8.3%); headroom 7h20m, or 12.0 GiB more data`,
		"coffer restore --config /etc/coffer/coffer.yaml --job job00 --id 20261122T100000.000Z-0000",
		"20261101T000000.000Z-beef: signature does not verify",
		`<tr class="control" id="control-job01-encryption" data-status="fail">`,
		`<section class="job" id="job-job00">`, "Weekly backups of job job00 per destination", "Drill durations of job job00 against the RTO",
		`<meta name="viewport"`, "@media print", `action="/logout"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(body, "<svg"); n != 4 {
		t.Errorf("%d inline SVG charts, want 4 (timeline and drills of 2 jobs)", n)
	}
}

// TestWindow: ?weeks= picks the report's window; anything but a whole
// number from 1 to 104 is refused with 400 and says what is wanted.
func TestWindow(t *testing.T) {
	cfg, in := fakeInstallation(t, 1, 2)
	var calls atomic.Int32
	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	h := fakeHandler(cfg, in, &calls, &now)
	if w := get(t, h, "/?weeks=5"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "coffer report --since 5w") {
		t.Errorf("?weeks=5: %d, want 200 with the 5-week report", w.Code)
	}
	for _, q := range []string{"0", "105", "-3", "12.5", "twelve", "1e2", strings.Repeat("9", 40)} {
		w := get(t, h, "/?weeks="+q)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "want a whole number of weeks from 1 to 104") {
			t.Errorf("?weeks=%s: %d %q, want 400 saying what is wanted", q, w.Code, w.Body.String())
		}
	}
	if w := get(t, h, "/download/report.csv?weeks=0"); w.Code != http.StatusBadRequest {
		t.Errorf("download with ?weeks=0: %d, want 400", w.Code)
	}
}

// TestDownloads: the report downloads are what coffer report --format
// writes for the same input, as attachments.
func TestDownloads(t *testing.T) {
	cfg, in := fakeInstallation(t, 2, 2)
	var calls atomic.Int32
	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	h := fakeHandler(cfg, in, &calls, &now)
	rep := report.Evaluate(in)
	for _, c := range []struct {
		path  string
		ctype string
		write func(io.Writer, *report.Report) error
	}{
		{"/download/report.html", "text/html", report.WriteHTML},
		{"/download/report.csv", "text/csv", report.WriteCSV},
		{"/download/report.json", "application/json", report.WriteJSON},
	} {
		w := get(t, h, c.path+"?weeks=12")
		var want strings.Builder
		if err := c.write(&want, rep); err != nil {
			t.Fatal(err)
		}
		cd := w.Header().Get("Content-Disposition")
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), c.ctype) ||
			!strings.HasPrefix(cd, `attachment; filename="coffer-report-2026-11-25-12w.`) {
			t.Errorf("%s: %d, %q, %q; want 200, %s, an attachment", c.path, w.Code, w.Header().Get("Content-Type"), cd, c.ctype)
		}
		if w.Body.String() != want.String() {
			t.Errorf("%s differs from what coffer report writes for the same input", c.path)
		}
	}
}

// TestOneGatherForConcurrentRequests: twenty requests at once share one
// gather; the snapshot is reused until the TTL, then gathered again.
func TestOneGatherForConcurrentRequests(t *testing.T) {
	cfg, in := fakeInstallation(t, 1, 1)
	var calls atomic.Int32
	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	release := make(chan struct{})
	h := New(Options{
		Config: func() *config.Config { return cfg },
		Now:    func() time.Time { return *now.Load() },
		gather: func(ctx context.Context, _ *config.Config, weeks int) (report.Input, error) {
			calls.Add(1)
			<-release
			return in, nil
		},
	})
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() { codes <- get(t, h, "/").Code })
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a concurrent request got %d", c)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d gathers for 20 concurrent requests, want 1", n)
	}
	later := testNow.Add(DefaultTTL - time.Second)
	now.Store(&later)
	get(t, h, "/")
	if n := calls.Load(); n != 1 {
		t.Errorf("%d gathers within the TTL, want 1", n)
	}
	expired := testNow.Add(DefaultTTL + time.Second)
	now.Store(&expired)
	get(t, h, "/")
	if n := calls.Load(); n != 2 {
		t.Errorf("%d gathers after the TTL, want 2", n)
	}
}

// TestSlowGatherAnswers503: a request does not wait for a slow gather
// longer than Wait; it is told to come back, and the gather goes on.
func TestSlowGatherAnswers503(t *testing.T) {
	cfg, in := fakeInstallation(t, 1, 1)
	release := make(chan struct{})
	defer close(release)
	h := New(Options{
		Config: func() *config.Config { return cfg }, Wait: 50 * time.Millisecond,
		gather: func(ctx context.Context, _ *config.Config, weeks int) (report.Input, error) {
			<-release
			return in, nil
		},
	})
	w := get(t, h, "/")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "still being gathered") {
		t.Errorf("slow gather: %d %q, want 503 with Retry-After", w.Code, w.Body.String())
	}
}

// BenchmarkPage renders the page for 50 jobs with 20 backups each from
// in-memory input: "cached" is a request served from a gathered snapshot
// (the usual case), "evaluate" adds report.Evaluate (the first request
// after each gather, without the gather's reads).
func BenchmarkPage(b *testing.B) {
	cfg, in := fakeInstallation(b, 50, 20)
	var calls atomic.Int32
	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	h := fakeHandler(cfg, in, &calls, &now)
	b.Run("cached", func(b *testing.B) {
		size := 0
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != http.StatusOK {
				b.Fatalf("GET /: %d", w.Code)
			}
			size = w.Body.Len()
		}
		b.ReportMetric(float64(size), "bytes/page")
	})
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			snap := &snapshot{cfg: cfg, in: in, rep: report.Evaluate(in), at: testNow}
			if err := h.render(io.Discard, snap, 12, "n"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
