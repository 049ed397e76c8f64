package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/coffer-backup/coffer/config"
	"go.uber.org/zap"
)

// target is one place a message goes.
type target struct {
	name  string // "webhook[0]", "slack[1]", "ping": what errors and logs show
	url   config.Secret
	body  []byte
	ctype string
	// insecure allows an http:// URL (notify.insecure_http, or the job's
	// ping_insecure_http); otherwise only https:// is sent to.
	insecure bool
	// flag names the setting that would allow http://, for the error.
	flag string
}

// maxRetryAfter is the longest Retry-After a target may ask for before
// the next attempt; longer requests end the attempts.
const maxRetryAfter = 30 * time.Second

// deliver POSTs t.body to t.url, retrying network errors, 5xx and 429 with
// exponential backoff until n.attempts are used or ctx ends.
func (n *Notifier) deliver(ctx context.Context, t target) error {
	raw := t.url.Reveal()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: invalid URL", t.name)
	}
	if u.Scheme == "http" && !t.insecure {
		return fmt.Errorf("%s: http:// URL refused: it would send the notification and the URL's token unencrypted (use https://, or set %s: true for a local test receiver)", t.name, t.flag)
	}
	secrets := urlSecrets(raw, u)
	wait := n.backoff
	var lastErr error
	for attempt := 1; ; attempt++ {
		retryAfter, err := n.attempt(ctx, u, t)
		if err == nil {
			return nil
		}
		var perm *permanentError
		switch {
		case errors.As(err, &perm):
			return fmt.Errorf("%s: %s", t.name, redact(err.Error(), secrets))
		case ctx.Err() != nil:
			msg := ctxReason(ctx, n.timeout)
			if lastErr != nil {
				msg += " (last error: " + redact(lastErr.Error(), secrets) + ")"
			}
			return fmt.Errorf("%s: %s", t.name, msg)
		}
		lastErr = err
		if attempt >= n.attempts {
			return fmt.Errorf("%s: %s (after %d attempts)", t.name, redact(err.Error(), secrets), attempt)
		}
		d := wait
		if retryAfter > d {
			d = retryAfter
		}
		if retryAfter > maxRetryAfter || !fitsDeadline(ctx, d) {
			return fmt.Errorf("%s: %s (no time left to retry)", t.name, redact(err.Error(), secrets))
		}
		n.log.Debug("retrying notification", zap.String("target", t.name),
			zap.Int("attempt", attempt), zap.Duration("wait", d), zap.String("error", redact(err.Error(), secrets)))
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s: %s (%s)", t.name, redact(err.Error(), secrets), ctxReason(ctx, n.timeout))
		case <-timer.C:
		}
		wait *= 2
	}
}

// permanentError is an answer that retrying will not change (a 4xx
// other than 429).
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// attempt makes one request. It returns a *permanentError for answers not
// worth retrying, and the Retry-After the server asked for, if any.
func (n *Notifier) attempt(ctx context.Context, u *url.URL, t target) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(t.body))
	if err != nil {
		return 0, &permanentError{"cannot build request"}
	}
	req.Header.Set("Content-Type", t.ctype)
	req.Header.Set("User-Agent", n.agent)
	resp, err := n.client.Do(req)
	if err != nil {
		// *url.Error prints the URL: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	msg := "HTTP " + resp.Status
	if s := oneLine(snippet, 120); s != "" {
		msg += ": " + s
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Never re-POSTed to the Location: a redirect could take the
		// event to another server, or from https to http.
		return 0, &permanentError{msg + " (redirects are not followed)"}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return parseRetryAfter(resp.Header.Get("Retry-After")), errors.New(msg)
	}
	return 0, &permanentError{msg}
}

// fitsDeadline reports whether waiting d still leaves ctx time to run.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// ctxReason says why ctx ended, without its wrapped chain.
func ctxReason(ctx context.Context, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	return "cancelled"
}

// parseRetryAfter reads a Retry-After header given in seconds; HTTP dates
// and garbage count as no request.
func parseRetryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// oneLine turns a response body into at most max bytes of printable text
// on one line.
func oneLine(b []byte, max int) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return s
}

// urlSecrets lists the parts of a target URL that must not be shown: the
// whole URL, its path, query and user information, raw and unescaped.
func urlSecrets(raw string, u *url.URL) []string {
	s := []string{raw, u.String(), u.EscapedPath(), u.Path, u.RawQuery, u.Fragment}
	if q, err := url.QueryUnescape(u.RawQuery); err == nil {
		s = append(s, q)
	}
	for _, vs := range u.Query() {
		s = append(s, vs...)
	}
	s = append(s, strings.Split(u.Path, "/")...)
	if u.User != nil {
		s = append(s, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			s = append(s, p)
		}
	}
	return s
}

// minSecret is the shortest URL part redact removes; shorter parts ("/",
// "v1") would mangle messages without hiding anything.
const minSecret = 6

// redact replaces every occurrence of the secrets in msg with "[redacted]",
// longest first.
func redact(msg string, secrets []string) string {
	var keep []string
	for _, s := range secrets {
		if len(s) >= minSecret {
			keep = append(keep, s)
		}
	}
	// Longest first, so a whole URL goes before its parts.
	sort.SliceStable(keep, func(i, j int) bool { return len(keep[i]) > len(keep[j]) })
	for _, s := range keep {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

// pingTarget returns raw with suffix appended to its path (a trailing
// slash in raw is dropped first); the query is kept.
func pingTarget(raw, suffix string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("invalid URL")
	}
	u.Path = strings.TrimRight(u.Path, "/") + suffix
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/") + suffix
	}
	return u.String(), nil
}
