package notify

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// wireEvent is the stable JSON form of an Event (see the package comment).
type wireEvent struct {
	Time         string            `json:"time"`
	Kind         string            `json:"kind"`
	Job          string            `json:"job"`
	BackupID     string            `json:"backup_id"`
	Outcome      Outcome           `json:"outcome"`
	Message      string            `json:"message"`
	Destinations map[string]string `json:"destinations"`
	Host         string            `json:"host"`
}

// webhookBody encodes ev for a generic webhook.
func webhookBody(ev Event) ([]byte, error) {
	dests := ev.Destinations
	if dests == nil {
		dests = map[string]string{}
	}
	return json.Marshal(wireEvent{
		Time:         ev.Time.UTC().Format(time.RFC3339),
		Kind:         ev.Kind,
		Job:          ev.Job,
		BackupID:     ev.BackupID,
		Outcome:      ev.Outcome,
		Message:      ev.Message,
		Destinations: dests,
		Host:         ev.Host,
	})
}

// slackBody encodes ev as a Slack-compatible {"text": ...} message.
func slackBody(ev Event) ([]byte, error) {
	return json.Marshal(struct {
		Text string `json:"text"`
	}{slackEscape(Summary(ev))})
}

// maxDetails bounds the details part of a summary, in bytes.
const maxDetails = 500

// Summary returns a one-line human summary of ev, such as
// ":x: coffer backup app FAILED on db1: offsite: connection refused".
// It starts with an emoji for the outcome, then the kind, job, outcome,
// host and backup ID, then the message and each failed destination's
// error (sorted by destination name).
func Summary(ev Event) string {
	var b strings.Builder
	b.WriteString(emoji(ev.Outcome))
	b.WriteString(" coffer ")
	b.WriteString(ev.Kind)
	if ev.Job != "" {
		b.WriteString(" " + ev.Job)
	}
	b.WriteString(" " + strings.ToUpper(string(ev.Outcome)))
	if ev.Host != "" {
		b.WriteString(" on " + ev.Host)
	}
	if ev.BackupID != "" {
		b.WriteString(" (" + ev.BackupID + ")")
	}
	var details []string
	if ev.Message != "" {
		details = append(details, ev.Message)
	}
	names := make([]string, 0, len(ev.Destinations))
	for name, res := range ev.Destinations {
		if res != DestinationOK {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		details = append(details, name+": "+ev.Destinations[name])
	}
	if len(details) > 0 {
		d := strings.Join(details, "; ")
		if len(d) > maxDetails {
			d = strings.ToValidUTF8(d[:maxDetails], "") + "..."
		}
		b.WriteString(": " + d)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// emoji returns the Slack emoji code for an outcome.
func emoji(outcome Outcome) string {
	switch outcome {
	case OutcomeOK:
		return ":white_check_mark:"
	case OutcomePartial:
		return ":warning:"
	case OutcomeStarted:
		return ":arrow_forward:"
	default:
		return ":x:"
	}
}

// slackEscape escapes the three characters Slack's text format reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
