package report

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/drill"
)

// Status is a control's outcome.
type Status string

// Statuses, from best to worst.
const (
	Pass Status = "pass"
	Warn Status = "warn" // passed, but someone should look (e.g. a key rotation in progress)
	Fail Status = "fail"
)

// worse returns the worse of a and b.
func worse(a, b Status) Status {
	if a == Fail || b == Fail {
		return Fail
	}
	if a == Warn || b == Warn {
		return Warn
	}
	return Pass
}

// Control IDs, stable across versions: scripts may match on them.
const (
	ControlWeekly     = "weekly-backups"
	ControlRetention  = "retention"
	ControlEncryption = "encryption"
	ControlDrill      = "drill"
)

// Control titles, in the order controls are reported.
const (
	TitleWeekly     = "Weekly backup in every destination"
	TitleRetention  = "Retention: nothing kept too long, nothing pruned early"
	TitleEncryption = "Encrypted to the configured recipients, manifests check out"
	TitleDrill      = "Restore drill: recent, passed, within the RTO"
)

// Report is the compliance report over one window.
type Report struct {
	// Generated is the time the report describes (Input.Now).
	Generated time.Time `json:"generated"`
	// From is the start of the window (Generated - Since).
	From time.Time `json:"from"`
	// Since is the window's length, e.g. "84d".
	Since string      `json:"since"`
	Jobs  []JobReport `json:"jobs"`
}

// JobReport is one job's controls and the data behind them.
type JobReport struct {
	Job      string    `json:"job"`
	Timezone string    `json:"timezone"`
	Schedule string    `json:"schedule"`
	Controls []Control `json:"controls"`
	// Coverage is the weekly timeline of each destination, in the job's
	// destination order.
	Coverage []Coverage `json:"coverage"`
	// Recipients are the job's configured age recipients.
	Recipients []Recipient `json:"recipients"`
	// Drills is the drill history: every drill started in the window,
	// and the last drill even when older, oldest first.
	Drills []DrillRun `json:"drills"`
	// RTOSeconds is the job's configured recovery time objective.
	RTOSeconds float64 `json:"rto_seconds"`
	// DrillMaxAge is how old the last drill may be, e.g. "35d".
	DrillMaxAge string `json:"drill_max_age"`
	// ProtectedSince is the day (in the job's time zone, e.g.
	// "2026-11-30") from which the job's weeks are judged: the earliest
	// of its first known backup, its first audit event and its
	// configured protected_since. Weeks that end before it are
	// WeekNotYetProtected. Empty when none of the three is known.
	ProtectedSince string `json:"protected_since,omitempty"`
	// ProtectedSinceSource says which of the three it is:
	// ProtectedByBackup, ProtectedByEvent or the configuration key
	// ("jobs.NAME.protected_since").
	ProtectedSinceSource string `json:"protected_since_source,omitempty"`
}

// Where protection began, for JobReport.ProtectedSinceSource (or the
// configuration key jobs.NAME.protected_since).
const (
	ProtectedByBackup = "first backup"
	ProtectedByEvent  = "first audit event"
)

// Control is one question answered with pass, warn or fail, a one-line
// summary and the evidence, one finding per line.
type Control struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Status   Status   `json:"status"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
}

// add records a finding as evidence and makes c's status at least s.
func (c *Control) add(s Status, format string, args ...any) {
	c.Status = worse(c.Status, s)
	c.Evidence = append(c.Evidence, fmt.Sprintf(format, args...))
}

// Coverage is one destination's weekly timeline.
type Coverage struct {
	Destination string `json:"destination"`
	Role        string `json:"role"`
	// Error is set when the destination could not be read: its weeks
	// then rest on the audit trail alone.
	Error string `json:"error,omitempty"`
	Weeks []Week `json:"weeks"`
}

// Week states in a timeline.
const (
	WeekCovered = "covered" // a complete backup of that week is known
	WeekMissing = "missing" // none is known
	WeekPending = "pending" // the current week, whose scheduled backup is not due yet
	// WeekUnproven: only audit events whose chain is broken or
	// unverifiable show a backup; they are no evidence, and the week
	// fails like a missing one.
	WeekUnproven = "unproven"
	// WeekNotYetProtected: the week ended before the job's protection
	// began (JobReport.ProtectedSince); it is not judged and fails
	// nothing.
	WeekNotYetProtected = "not-yet-protected"
)

// Week is one ISO week of a destination's timeline.
type Week struct {
	// Week is the ISO week, e.g. "2026-W07".
	Week string `json:"week"`
	// Start is the week's Monday in the job's time zone, e.g.
	// "2026-02-09".
	Start string `json:"start"`
	// Status is WeekCovered, WeekMissing, WeekPending, WeekUnproven or
	// WeekNotYetProtected.
	Status string `json:"status"`
	// Backups counts the complete backups of that week known at the
	// destination: Present now, plus those only the audit trail shows.
	Backups int `json:"backups"`
	Present int `json:"present"`
	Audited int `json:"audited"`
	// Unproven counts backups of that week shown only by audit events
	// whose chain is broken or unverifiable; not in Backups.
	Unproven int `json:"unproven"`
	// Source is where the evidence comes from: "present", "audit trail
	// (pruned since)", "audit trail (not present now)" or "audit trail
	// (unproven)"; empty when the week has no backup.
	Source string `json:"source"`
}

// Week sources.
const (
	SourcePresent       = "present"
	SourceAuditPruned   = "audit trail (pruned since)"
	SourceAuditNotFound = "audit trail (not present now)"
	SourceAuditUnproven = "audit trail (unproven)"
)

// Recipient is one age recipient: the full public key and a short
// fingerprint for people (first 12 and last 6 characters).
type Recipient struct {
	Fingerprint string `json:"fingerprint"`
	Key         string `json:"key"`
}

// DrillRun is one drill of the history.
type DrillRun struct {
	ID       string    `json:"id"`
	Backup   string    `json:"backup"`
	From     string    `json:"from"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// TotalSeconds is how long the whole drill took.
	TotalSeconds float64 `json:"total_seconds"`
	// RTOSeconds is the RTO the drill is judged against: the job's
	// configured RTO.
	RTOSeconds float64 `json:"rto_seconds"`
	// Result is drill.Passed or drill.Failed: as the drill recorded it,
	// except that a passed drill whose manifest signature was not
	// verified (or not recorded as verified) is drill.Failed here.
	Result drill.Result `json:"result"`
	// OverRTO is true when TotalSeconds exceeds RTOSeconds.
	OverRTO bool `json:"over_rto"`
	// ManifestVerified is whether the drill verified the backup's
	// manifest signature; null for evidence written before Coffer
	// recorded it. A drill without true here is shown as failed, with
	// the reason in Error.
	ManifestVerified *bool `json:"manifest_verified"`
	// ManifestSignedBy is the id of the key that signed the manifest.
	ManifestSignedBy string `json:"manifest_signed_by,omitempty"`
	Error            string `json:"error,omitempty"`
	Warning          string `json:"warning,omitempty"`
}

// Passed reports whether no control of any job failed. Warnings pass.
func (r *Report) Passed() bool { return r.Failed() == 0 }

// Passed reports whether none of the job's controls failed.
func (j *JobReport) Passed() bool {
	for _, c := range j.Controls {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// MarshalJSON encodes the report with a "passed" member added, and each
// job with its own.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		Passed bool `json:"passed"`
	}{plain(r), r.Passed()})
}

// MarshalJSON encodes the job's report with a "passed" member added.
func (j JobReport) MarshalJSON() ([]byte, error) {
	type plain JobReport
	return json.Marshal(struct {
		plain
		Passed bool `json:"passed"`
	}{plain(j), j.Passed()})
}

// Failed counts the controls with status fail across every job.
func (r *Report) Failed() int {
	n := 0
	for _, j := range r.Jobs {
		for _, c := range j.Controls {
			if c.Status == Fail {
				n++
			}
		}
	}
	return n
}

// Control returns the job's control with the given id, or nil.
func (j *JobReport) Control(id string) *Control {
	for i := range j.Controls {
		if j.Controls[i].ID == id {
			return &j.Controls[i]
		}
	}
	return nil
}
