// Package notify tells people and monitors how the daemon's runs went.
//
// # Targets
//
// A Notifier sends to the targets of the configuration's notify section,
// and pings each job's ping_url:
//
//   - Generic webhooks (notify.webhooks) receive a POST with Content-Type
//     application/json whose body is one Event object (below).
//   - Slack-compatible webhooks (notify.slack) receive a POST of
//     {"text": "..."} holding a one-line summary, for example
//     ":x: coffer backup app FAILED on db1: offsite: connection refused".
//     The emoji is :white_check_mark: for ok, :warning: for partial and
//     :x: for failed.
//   - Healthchecks-style pings (a job's ping_url, see Notifier.Ping)
//     receive a POST to URL/start when a run starts, URL after a success
//     and URL/fail after a failed or partial run. The body is a short
//     plain-text line.
//
// # Webhook payload
//
// The JSON object sent to generic webhooks has these keys, all of them
// always present:
//
//	{
//	  "time":         "2026-11-23T02:00:41Z",   // RFC 3339, UTC
//	  "kind":         "backup",                 // backup, prune, repair, drill or sweep
//	  "job":          "app",                    // "" when not tied to one job
//	  "backup_id":    "20261123T020000Z-7f3a",  // "" when there is none
//	  "outcome":      "partial",                // ok, partial, failed, or warning (a drill that passed but needs attention)
//	  "message":      "1 of 2 destinations failed",
//	  "destinations": {"primary": "ok", "offsite": "connection refused"}, // {} when none
//	  "host":         "db1"
//	}
//
// The format is stable: later versions may add keys but never rename or
// remove one or change its meaning. Receivers should ignore keys they do
// not know.
//
// # Guarantees
//
//   - Successful runs ("ok") are sent only when notify.on_success is set;
//     partial and failed runs are always sent; "started" goes only to
//     pings.
//   - Targets are sent to in parallel. Each has its own time bound
//     (default 10s) covering every attempt, and Send and Ping return
//     within that bound (plus a short grace) even when a target hangs.
//   - A target is retried with exponential backoff (default 3 attempts in
//     all) after a network error, a 5xx answer or 429 Too Many Requests
//     (honouring a short Retry-After); never after any other 4xx.
//   - Target URLs are credentials. They MUST NOT appear in returned
//     errors or logs: targets are named "webhook[0]", "slack[1]" and
//     "ping" instead, and the URL is removed from transport errors.
//   - TLS certificates are always verified, with TLS 1.2 or later when
//     the Notifier builds its own client.
//   - Nothing is sent to an http:// URL unless notify.insecure_http
//     (webhooks, Slack) or the job's ping_insecure_http (its ping) allows
//     it.
//   - Redirects are never followed, with any client: a 3xx answer is a
//     failed delivery (not retried) reported with its status, and nothing
//     is sent to its Location.
//   - Requests carry the User-Agent "coffer/VERSION".
package notify
