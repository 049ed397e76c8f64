package report

import (
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/manifest"
)

// Roles of a job's destinations: the first is the primary, the rest are
// offsite copies.
const (
	RolePrimary = "primary"
	RoleOffsite = "offsite"
)

// Input is everything Evaluate decides from. Gather fills it from the
// stores; tests fabricate it.
type Input struct {
	// Now is the time the report is made at. Evaluate never reads the
	// clock.
	Now time.Time
	// Since is the length of the window ending at Now (e.g. 12 weeks).
	Since time.Duration
	// Jobs in the order they are reported.
	Jobs []JobInput
}

// JobInput is what is known about one job.
type JobInput struct {
	// Job is the job's validated configuration (schedule, time zone,
	// retention, recipients, RTO, drill settings); required. A job built
	// in code must be resolved (config.Job.Resolve).
	Job *config.Job
	// Destinations in the job's order: the primary first.
	Destinations []DestinationInput
	// Events are the job's audit events (backup, repair, prune, purge...),
	// at least those since the start of the window's first week.
	Events []audit.Event
	// UnprovenEvents are the audit events among Events that are no
	// evidence, by ID, with why: their chain is broken (edited, removed,
	// reordered, inserted), their shipped head is unsigned or its
	// signature fails, their copies disagree, or they were written before
	// the trail was chained. Events not in it are proven. Gather fills it
	// from audit.Verify.
	UnprovenEvents map[string]string
	// FirstEvent is the time of the job's earliest audit event, however
	// old (Gather reads the whole trail for it); zero when none is known.
	// With the backups known and Events, it tells when the job's
	// protection began.
	FirstEvent time.Time
	// AuditErrors name the parts of the audit trail that could not be
	// read (the local log, a destination's audit objects). Events may then
	// be incomplete.
	AuditErrors []error
	// Drills are the job's drill reports from its drill source, in any
	// order.
	Drills []*drill.Report
	// BadDrills are drill reports that could not be read, decoded or
	// verified, by object key.
	BadDrills map[string]error
	// UnverifiedDrills are drill reports among Drills whose signature is
	// missing or fails, accepted only because the reader skips signatures,
	// by object name ("<key> on <store>").
	UnverifiedDrills map[string]error
	// DrillErr is set when the drill source could not be read at all.
	DrillErr error
}

// DestinationInput is what one destination holds for a job.
type DestinationInput struct {
	// Name is the destination's name in the configuration.
	Name string
	// Role is RolePrimary or RoleOffsite.
	Role string
	// ObjectLock is the destination's Object Lock mode ("governance" or
	// "compliance"), or "" when it has none.
	ObjectLock string
	// Err is set when the destination could not be opened or listed; its
	// Manifests and Bad are then empty.
	Err error
	// Manifests are the decoded, valid manifests of the backups present.
	Manifests []*manifest.Manifest
	// Bad are backups present (a manifest object exists) whose manifest
	// could not be read, decoded or verified, or does not match its
	// payload.
	Bad []BadBackup
	// Unverified are backups among Manifests whose signature is missing
	// or fails and that were accepted only because the reader skips
	// signatures (manifest.Trust.SkipSignature); Err says what failed.
	Unverified []BadBackup
}

// BadBackup is a backup whose manifest does not check out.
type BadBackup struct {
	ID  string
	Err error
}
