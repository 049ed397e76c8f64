package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/config"
	"go.uber.org/zap"
)

// Outcome is what an Event or a ping reports. The words are part of the
// webhook payload (see the package comment) and of the Slack summary.
type Outcome string

// Outcomes of an Event or a ping. A ping takes OK, Partial, Failed or
// Started.
const (
	OutcomeOK      Outcome = "ok"      // done (a backup: at every destination)
	OutcomePartial Outcome = "partial" // a backup stored at some destinations only
	OutcomeFailed  Outcome = "failed"  // not done, or a finding that needs someone
	OutcomeStarted Outcome = "started" // a run began (pings only)
	OutcomeWarning Outcome = "warning" // a drill passed, but needs attention
)

// DestinationOK is the value of Event.Destinations for a destination that
// did its part.
const DestinationOK = string(OutcomeOK)

// Defaults used when no Option changes them.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultAttempts = 3
	DefaultBackoff  = time.Second
)

// grace is how long Send and Ping wait beyond the per-target bound for
// requests that were cancelled but have not returned yet.
const grace = time.Second

// Event is the outcome of one daemon run. Its JSON form, sent to generic
// webhooks, is documented in the package comment.
type Event struct {
	// Time of the event; Send uses the current time when it is zero.
	Time time.Time
	// Kind of run: "backup", "prune", "repair", "drill", "sweep", or of
	// finding: "untrusted" (manifest keys not trusted), "clock" (the host's
	// clock disagrees with the storage's).
	Kind string
	// Job name; empty for runs not tied to one job.
	Job string
	// BackupID of the backup concerned, if any.
	BackupID string
	// Outcome is one of the Outcome constants.
	Outcome Outcome
	// Message is a short human summary; it must hold no secret.
	Message string
	// Destinations maps a destination name to DestinationOK or a short
	// error.
	Destinations map[string]string
	// Host that ran the job; Send uses the local host name when empty.
	Host string
}

// Notifier sends events to the configured targets. It is safe for
// concurrent use.
type Notifier struct {
	cfg      config.Notify
	log      *zap.Logger
	client   *http.Client
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	agent    string
	host     string
}

// Option changes a Notifier's HTTP client, version or timings.
type Option func(*Notifier)

// WithHTTPClient makes the Notifier send through (a copy of) c. Its
// Timeout should be zero or larger than the per-target bound, which is
// applied through the request context. Its CheckRedirect is replaced:
// redirects are never followed.
func WithHTTPClient(c *http.Client) Option {
	return func(n *Notifier) {
		if c != nil {
			cc := *c
			n.client = &cc
		}
	}
}

// WithTimeout bounds all attempts to one target together (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(n *Notifier) {
		if d > 0 {
			n.timeout = d
		}
	}
}

// WithRetry sets how many attempts a target gets in all (default 3) and
// the wait before the second one (default 1s), doubled before each
// further attempt.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(n *Notifier) {
		if attempts > 0 {
			n.attempts = attempts
		}
		if backoff >= 0 {
			n.backoff = backoff
		}
	}
}

// WithVersion sets the version in the User-Agent "coffer/VERSION"
// (default "dev").
func WithVersion(v string) Option {
	return func(n *Notifier) {
		if v != "" {
			n.agent = "coffer/" + v
		}
	}
}

// New returns a Notifier for cfg. A nil log discards log output. Without
// WithHTTPClient it uses a clone of http.DefaultTransport (system roots,
// certificates verified, TLS 1.2 or later).
func New(cfg config.Notify, log *zap.Logger, opts ...Option) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	n := &Notifier{
		cfg:      cfg,
		log:      log.Named("notify"),
		timeout:  DefaultTimeout,
		attempts: DefaultAttempts,
		backoff:  DefaultBackoff,
		agent:    "coffer/dev",
	}
	n.host, _ = os.Hostname()
	for _, o := range opts {
		o(n)
	}
	if n.client == nil {
		n.client = defaultClient()
	}
	n.client.CheckRedirect = noRedirects
	return n
}

// noRedirects makes the client return a 3xx answer as it is, which
// deliver counts as a failed delivery: a POST is never sent on to the
// Location (another server, or plain http) that a redirect names.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultClient is an HTTP client over a clone of the default transport
// (system roots, and certificates always verified) that refuses TLS below
// 1.2.
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.MinVersion = tls.VersionTLS12
	return &http.Client{Transport: t}
}

// Send delivers ev to every configured webhook and Slack target, in
// parallel. An OutcomeOK event is sent only when notify.on_success is
// set; an OutcomeStarted event goes to no target here (see Ping). Send returns within
// the per-target bound plus a short grace. The error joins one error per
// target that could not be reached, named "webhook[i]" or "slack[i]"; it
// never holds a URL. Cancelling ctx abandons the sends: to report a run
// that shutdown interrupted, pass context.WithoutCancel(ctx).
func (n *Notifier) Send(ctx context.Context, ev Event) error {
	if ev.Outcome == OutcomeStarted || (ev.Outcome == OutcomeOK && !n.cfg.OnSuccess) {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Host == "" {
		ev.Host = n.host
	}
	body, err := webhookBody(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	slack, err := slackBody(ev)
	if err != nil {
		return fmt.Errorf("encode slack message: %w", err)
	}
	var ts []target
	for i, u := range n.cfg.Webhooks {
		ts = append(ts, target{name: fmt.Sprintf("webhook[%d]", i), url: u, body: body, ctype: "application/json",
			insecure: n.cfg.InsecureHTTP, flag: "notify.insecure_http"})
	}
	for i, u := range n.cfg.Slack {
		ts = append(ts, target{name: fmt.Sprintf("slack[%d]", i), url: u, body: slack, ctype: "application/json",
			insecure: n.cfg.InsecureHTTP, flag: "notify.insecure_http"})
	}
	return n.deliverAll(ctx, ts)
}

// Ping reports outcome to job's healthchecks-style check URL (ping_url):
// URL/start for OutcomeStarted, URL for OutcomeOK, URL/fail for
// OutcomeFailed and OutcomePartial. A job without one does nothing; an http:// URL is refused
// unless the job sets ping_insecure_http. The error names the target
// "ping" and never holds the URL.
func (n *Notifier) Ping(ctx context.Context, job *config.Job, outcome Outcome) error {
	pingURL := job.PingURL
	if pingURL.IsZero() {
		return nil
	}
	var suffix string
	switch outcome {
	case OutcomeStarted:
		suffix = "/start"
	case OutcomeOK:
	case OutcomeFailed, OutcomePartial:
		suffix = "/fail"
	default:
		return fmt.Errorf("ping: unknown outcome %q", outcome)
	}
	u, err := pingTarget(pingURL.Reveal(), suffix)
	if err != nil {
		return errors.New("ping: invalid URL")
	}
	body := []byte(fmt.Sprintf("coffer %s on %s\n", outcome, n.host))
	return n.deliverAll(ctx, []target{{name: "ping", url: config.NewSecret(u), body: body, ctype: "text/plain; charset=utf-8",
		insecure: job.PingInsecureHTTP, flag: "jobs." + job.Name + ".ping_insecure_http"}})
}

// deliverAll sends to every target in parallel and joins their errors in
// target order. It returns within n.timeout plus grace.
func (n *Notifier) deliverAll(ctx context.Context, ts []target) error {
	if len(ts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	errs := make([]error, len(ts))
	finished := make([]bool, len(ts))
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.deliver(ctx, t)
			mu.Lock()
			errs[i], finished[i] = err, true
			mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(done) }()
	hard := time.NewTimer(n.timeout + grace)
	defer hard.Stop()
	select {
	case <-done:
		return errors.Join(errs...)
	case <-hard.C:
	}
	// Some request ignored cancellation: report it and leave it behind.
	mu.Lock()
	out := make([]error, len(ts))
	for i, t := range ts {
		out[i] = errs[i]
		if !finished[i] {
			out[i] = fmt.Errorf("%s: no answer within %s", t.name, n.timeout)
		}
	}
	mu.Unlock()
	return errors.Join(out...)
}
