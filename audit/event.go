package audit

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Actions an Event records.
const (
	ActionBackup        = "backup"         // a backup run (ok, partial or failed)
	ActionRestore       = "restore"        // a restore
	ActionPrune         = "prune"          // one backup deleted by retention; Rule says why
	ActionPurge         = "purge"          // a backup deleted on request
	ActionRepair        = "repair"         // a missing copy written to a destination
	ActionSweep         = "sweep"          // leftovers of failed uploads removed
	ActionConfigReload  = "config_reload"  // the daemon reloaded its configuration
	ActionLeaseAcquired = "lease_acquired" // this host took a job's HA lease
	ActionLeaseLost     = "lease_lost"     // this host lost a job's HA lease
	ActionLeaseReleased = "lease_released" // this host gave a job's HA lease up
	ActionDrill         = "drill"          // a timed test restore
	ActionUntrusted     = "untrusted"      // a manifest key that fails verification and is not used (recorded once per key and reason)
)

// Outcome is what an Event's action came to. The words are written to the
// audit log and the bucket's copy of it, and the compliance report reads
// them back from trails written years before: a value is never renamed.
type Outcome string

// Outcomes an Event reports.
const (
	OutcomeOK      Outcome = "ok"      // done, at every destination concerned
	OutcomePartial Outcome = "partial" // done at some destinations, failed at others
	OutcomeFailed  Outcome = "failed"  // not done
	OutcomeDeleted Outcome = "deleted" // prune: the backup was deleted by retention
	OutcomeLocked  Outcome = "locked"  // prune: Object Lock kept a backup retention would delete
	OutcomeRemoved Outcome = "removed" // repair: a verified manifest no destination holds the whole payload of was removed
)

// idTimeLayout is the time part of an event ID: fixed width, so IDs sort
// by time.
const idTimeLayout = "20060102T150405.000000000Z"

// Event is one entry of the audit trail. Every field is always present in
// the JSON form; empty strings mean "not applicable".
type Event struct {
	// ID is unique and sorts by time: the UTC time to the nanosecond and
	// a random suffix, e.g. "20261123T020000.123456789Z-4f1c9a0b2e7d".
	ID string `json:"id"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Host is the host name of the machine that recorded the event.
	Host string `json:"host"`
	// User is the operating-system user that ran Coffer.
	User string `json:"user"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Job, BackupID and Destination name what the event concerns.
	Job         string `json:"job"`
	BackupID    string `json:"backup_id"`
	Destination string `json:"destination"`
	// Outcome is the result, one of the Outcome constants.
	Outcome Outcome `json:"outcome"`
	// Rule is the retention rule behind a prune deletion.
	Rule string `json:"rule"`
	// Detail is free text (an error message, counts); never a secret.
	Detail string `json:"detail"`
	// Seq numbers the chained events of one log from 1, and Prev is the
	// LineHash of the line before this one in the log (Genesis for the
	// first): the hash chain that makes an edit, removal, reordering or
	// insertion visible. Log.Record sets both; events written before the
	// chain existed have neither and are "unchained" (unproven).
	Seq  int64  `json:"seq,omitempty"`
	Prev string `json:"prev,omitempty"`
}

// newID returns an event ID for time t.
func newID(t time.Time) string {
	return t.UTC().Format(idTimeLayout) + "-" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
