// Package prune applies a job's retention policy to its destinations:
// retention.Plan decides, prune deletes (securely, every version) what the
// plan marks expired, one destination at a time.
//
// A backup is deleted manifest first, so it stops existing before its
// payload goes: an interrupted prune leaves an orphan payload (swept
// later), never a manifest pointing at nothing. A manifest protected by
// Object Lock keeps the whole backup and is reported as locked.
//
// Nothing is deleted on a destination whose own clock (storage.Clock) and
// the host's disagree by more than retention.ClockTolerance, or whose time
// cannot be read: ages measured on a wrong clock would be wrong.
package prune

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
	"github.com/coffer-backup/coffer/storage"
)

// Item is one backup on one destination and what the plan does with it.
type Item struct {
	Destination string         `json:"destination"`
	ID          string         `json:"id"`
	Time        time.Time      `json:"time"`
	Keep        bool           `json:"keep"`
	Rule        retention.Rule `json:"rule"`
	Reason      string         `json:"reason"`
	// Outcome after a real run: OutcomeKept, OutcomeDeleted,
	// OutcomeLocked, OutcomeFailed; OutcomeWouldDelete or OutcomeKept in
	// a dry run; in both, OutcomeUnverified and OutcomeIncomplete for the
	// copies that are neither counted nor deleted.
	Outcome Outcome `json:"outcome"`
	// Objects removed (versions included); Error when it failed or is
	// locked.
	Removed int    `json:"removed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// AuditEvent is the audit trail's record of a deletion attempt on it.
func (it Item) AuditEvent(job string) audit.Event {
	detail := it.Reason
	if it.Error != "" {
		detail += ": " + it.Error
	}
	return audit.Event{Action: audit.ActionPrune, Job: job, BackupID: it.ID, Destination: it.Destination,
		Outcome: audit.Outcome(it.Outcome), Rule: string(it.Rule), Detail: detail}
}

// Outcome is what prune did, or would do, with one backup on one
// destination. The outcomes of a deletion attempt are the audit trail's
// words (the audit event carries them), so they are defined as those.
type Outcome string

// Outcomes of an Item.
const (
	// OutcomeKept is a backup the policy keeps.
	OutcomeKept Outcome = "kept"
	// OutcomeWouldDelete is a backup a dry run would delete.
	OutcomeWouldDelete Outcome = "would delete"
	// OutcomeDeleted is a backup deleted.
	OutcomeDeleted = Outcome(audit.OutcomeDeleted)
	// OutcomeLocked is a backup the policy would delete but Object Lock
	// kept.
	OutcomeLocked = Outcome(audit.OutcomeLocked)
	// OutcomeFailed is a deletion that failed.
	OutcomeFailed = Outcome(audit.OutcomeFailed)
	// OutcomeUnverified is a manifest key that is not trusted (it does not
	// read, decode or verify, or names another backup): not counted as a
	// copy, not deleted.
	OutcomeUnverified Outcome = "unverified"
	// OutcomeIncomplete is a verified manifest whose payload is missing or
	// not at its recorded size on that destination (repair heals it): not
	// counted as a copy, not deleted.
	OutcomeIncomplete Outcome = "incomplete"
)

// Problem reports whether o needs the operator: a failed deletion, or a
// copy that is not trusted or not whole.
func (o Outcome) Problem() bool {
	return o == OutcomeFailed || o == OutcomeUnverified || o == OutcomeIncomplete
}

// Result is a prune of one job.
type Result struct {
	Job    string `json:"job"`
	DryRun bool   `json:"dry_run"`
	Items  []Item `json:"items"`
	// Refused names destinations not pruned at all, and why (unreachable,
	// newest backup dated in the future, host clock and the destination's
	// own clock more than retention.ClockTolerance apart or the
	// destination's time unreadable).
	Refused map[string]string `json:"refused,omitempty"`
}

// Deleted counts the backups deleted (or, in a dry run, to be deleted) on
// destination ("" for all).
func (r *Result) Deleted(destination string) int {
	return r.count(destination, OutcomeDeleted, OutcomeWouldDelete)
}

// Locked counts the backups the plan would delete but Object Lock kept on
// destination ("" for all).
func (r *Result) Locked(destination string) int { return r.count(destination, OutcomeLocked) }

// count counts the items on destination ("" for all) with one of outcomes.
func (r *Result) count(destination string, outcomes ...Outcome) int {
	n := 0
	for _, it := range r.Items {
		if (destination == "" || it.Destination == destination) && slices.Contains(outcomes, it.Outcome) {
			n++
		}
	}
	return n
}

// Policy is a validated job's retention policy, with weeks and months
// counted in its time zone.
func Policy(job *config.Job) retention.Policy {
	r := job.Retention
	return retention.Policy{
		KeepWithin:  r.KeepWithin.D(),
		MinKeep:     r.MinKeep,
		KeepWeekly:  r.KeepWeekly,
		KeepMonthly: r.KeepMonthly,
		Location:    job.Location(),
	}
}

// Options say how a prune runs.
type Options struct {
	// Policy decides which backups are kept.
	Policy retention.Policy
	// Now is the host's clock (internal/clock.Now()) when the prune is
	// called.
	Now time.Time
	// DryRun plans without deleting anything.
	DryRun bool
	// OnDelete, if not nil, is called after every attempted deletion,
	// whatever its outcome (deleted, locked or failed); never in a dry
	// run.
	OnDelete func(Item)
}

// Request is one prune of a job, read from its destinations.
type Request struct {
	// Job names the job whose backups are pruned.
	Job string
	// Destinations must be all of the job's destinations: copies are
	// counted across them, and a destination that cannot be listed counts
	// as holding nothing, which only ever keeps more.
	Destinations []storage.Destination
	// Trust checks every manifest of the job's catalog.
	Trust manifest.Trust
	Options
}

// Run plans and (unless req.DryRun) carries out the retention policy for
// req.Job on each of req.Destinations.
//
// Run reads the job's verified catalog (manifest.ReadCatalog, every
// manifest checked as req.Trust says) and applies the policy to it as
// RunCatalog does.
func Run(ctx context.Context, req Request, log *zap.Logger) (*Result, error) {
	started := time.Now() // monotonic: how far Now moves on while the catalog is read
	cat := manifest.ReadCatalog(ctx, req.Job, req.Destinations, req.Trust, nil)
	return runCatalog(ctx, cat, req.Destinations, req.Options, started, log)
}

// RunCatalog is Run on a catalog already read from dests (the daemon reads
// it through its manifest cache). Only the catalog's verified backups are
// planned: a copy counts (for the only-copy rule and min_keep) and may be
// deleted only on a destination that holds its verified manifest and its
// payload at the recorded size. A manifest key that is not trusted is
// reported as an OutcomeUnverified item and a verified manifest whose
// payload is missing or short as an OutcomeIncomplete one: neither is counted as a
// copy nor deleted.
//
// Before planning a destination, RunCatalog compares opts.Now (advanced by
// the time elapsed since) with the destination's own time
// (storage.Clock): when they are more than retention.ClockTolerance apart,
// or the destination's time cannot be read, the destination is refused,
// in dry runs too, and nothing on it is deleted.
func RunCatalog(ctx context.Context, cat *manifest.Catalog, dests []storage.Destination, opts Options, log *zap.Logger) (*Result, error) {
	return runCatalog(ctx, cat, dests, opts, time.Now(), log)
}

// runCatalog is RunCatalog where opts.Now was read at started (monotonic),
// so that the clock check compares the storage's time with the host's
// time as it is then, however long the catalog took to read.
func runCatalog(ctx context.Context, cat *manifest.Catalog, dests []storage.Destination, opts Options, started time.Time, log *zap.Logger) (*Result, error) {
	job, now := cat.Job, opts.Now
	hostNow := func() time.Time { return now.Add(time.Since(started)) }
	res := &Result{Job: job, DryRun: opts.DryRun, Refused: map[string]string{}}
	for name, err := range cat.Unreachable {
		res.Refused[name] = "cannot list: " + err.Error()
	}
	res.Items = append(res.Items, uncounted(cat, log)...)
	for _, d := range dests {
		if _, bad := cat.Unreachable[d.Name]; bad {
			continue
		}
		if err := checkClock(ctx, d, hostNow); err != nil {
			if ctx.Err() != nil {
				break // cancelled (a shutdown), not refused: the error says so
			}
			res.Refused[d.Name] = err.Error()
			log.Error("prune refused: clock check failed; nothing deleted there", zap.String("job", job), zap.String("destination", d.Name), zap.Error(err))
			continue
		}
		var backups []retention.Backup
		for _, b := range cat.On(d.Name) {
			backups = append(backups, retention.Backup{ID: b.ID, Time: b.Time(), Copies: len(b.Destinations)})
		}
		decisions, err := retention.Plan(opts.Policy, backups, now)
		if err != nil {
			res.Refused[d.Name] = err.Error()
			log.Error("prune refused", zap.String("job", job), zap.String("destination", d.Name), zap.Error(err))
			continue
		}
		for _, dec := range decisions {
			it := Item{Destination: d.Name, ID: dec.ID, Time: dec.Time, Keep: dec.Keep, Rule: dec.Rule, Reason: dec.Reason, Outcome: OutcomeKept}
			if !dec.Keep {
				if opts.DryRun {
					it.Outcome = OutcomeWouldDelete
				} else {
					deleteBackup(ctx, d, job, &it, log)
					if opts.OnDelete != nil {
						opts.OnDelete(it)
					}
				}
			}
			res.Items = append(res.Items, it)
		}
	}
	if len(res.Refused) == 0 {
		res.Refused = nil
	}
	return res, ctx.Err()
}

// uncounted reports what cat holds but does not count as a copy: its
// untrusted keys and its incomplete copies. They are kept, and their
// objects are left for repair (and the operator) to deal with.
func uncounted(cat *manifest.Catalog, log *zap.Logger) []Item {
	var items []Item
	for _, u := range cat.Untrusted {
		t, _ := manifest.IDTime(u.ID)
		items = append(items, Item{Destination: u.Destination, ID: u.ID, Time: t, Keep: true, Outcome: OutcomeUnverified,
			Reason: "manifest " + u.Key + " not trusted: not counted as a copy, not deleted", Error: u.Reason})
		log.Error("prune: manifest not trusted; the copy is neither counted nor deleted",
			zap.String("job", cat.Job), zap.String("destination", u.Destination), zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	for _, in := range cat.Incomplete {
		t, _ := manifest.IDTime(in.ID)
		items = append(items, Item{Destination: in.Destination, ID: in.ID, Time: t, Keep: true, Outcome: OutcomeIncomplete,
			Reason: "payload not whole: not counted as a copy, not deleted (repair heals it)", Error: in.Reason})
		log.Error("prune: verified manifest without its whole payload; the copy is neither counted nor deleted",
			zap.String("job", cat.Job), zap.String("destination", in.Destination), zap.String("id", in.ID), zap.String("reason", in.Reason))
	}
	return items
}

// deleteBackup disposes of one backup's objects on d, manifest first.
func deleteBackup(ctx context.Context, d storage.Destination, job string, it *Item, log *zap.Logger) {
	fields := []zap.Field{zap.String("job", job), zap.String("destination", d.Name), zap.String("id", it.ID), zap.String("rule", string(it.Rule))}
	removed, err := DisposeBackup(ctx, d.Store, job, it.ID)
	it.Removed = removed
	switch {
	case errors.Is(err, storage.ErrLocked) && removed == 0:
		it.Outcome, it.Error = OutcomeLocked, err.Error()
		log.Info("backup is under Object Lock: kept", append(fields, zap.Error(err))...)
	case err != nil:
		it.Outcome, it.Error = OutcomeFailed, err.Error()
		log.Error("prune: delete failed", append(fields, zap.Error(err))...)
	default:
		it.Outcome = OutcomeDeleted
		log.Info("pruned backup", append(fields, zap.Int("objects", removed), zap.String("reason", it.Reason))...)
	}
}

// DisposeBackup securely removes every object of backup id of job from s:
// the manifest first, then everything else in the backup's folder. It
// stops at the first error; storage.ErrLocked (wrapped) means Object Lock
// protects the object named.
func DisposeBackup(ctx context.Context, s storage.Store, job, id string) (int, error) {
	removed, err := storage.Dispose(ctx, s, manifest.Key(job, id))
	if err != nil {
		return removed, fmt.Errorf("%s: %w", manifest.Key(job, id), err)
	}
	var keys []string
	for obj, err := range s.List(ctx, manifest.Dir(job, id)) {
		if err != nil {
			return removed, err
		}
		keys = append(keys, obj.Key)
	}
	for _, k := range keys {
		n, err := storage.Dispose(ctx, s, k)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("%s: %w", k, err)
		}
	}
	return removed, nil
}

// PurgeResult is what Purge removed from one destination.
type PurgeResult struct {
	Destination string   `json:"destination"`
	Backups     int      `json:"backups"`
	IDs         []string `json:"ids"` // the backups disposed of
	Objects     int      `json:"objects"`
	Aborted     int      `json:"aborted_uploads"`
	Locked      []string `json:"locked,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Purge disposes of everything job has on d, whatever the retention policy
// says: every backup (manifest first), orphan payloads, unfinished uploads,
// the job's leases (backup and drill) and drill reports. It is for a
// tenant leaving. Objects under Object Lock cannot be removed; they are
// listed in Locked and the rest goes on.
func Purge(ctx context.Context, job string, d storage.Destination, log *zap.Logger) PurgeResult {
	res := PurgeResult{Destination: d.Name}
	fail := func(err error) PurgeResult {
		res.Error = err.Error()
		log.Error("purge failed", zap.String("job", job), zap.String("destination", d.Name), zap.Error(err))
		return res
	}
	if ul, ok := d.Store.(storage.UploadLister); ok {
		var uploads []storage.Upload
		for u, err := range ul.Uploads(ctx, layout.Job(job)) {
			if err != nil {
				return fail(err)
			}
			uploads = append(uploads, u)
		}
		for _, u := range uploads {
			if err := ul.AbortUpload(ctx, u); err != nil {
				return fail(err)
			}
			res.Aborted++
		}
	}
	ids, err := manifest.IDs(ctx, d.Store, job)
	if err != nil {
		return fail(err)
	}
	keep := map[string]bool{} // folders of locked backups: their payload stays with their manifest
	for _, id := range ids {
		n, err := DisposeBackup(ctx, d.Store, job, id)
		res.Objects += n
		switch {
		case errors.Is(err, storage.ErrLocked):
			res.Locked = append(res.Locked, err.Error())
			keep[manifest.Dir(job, id)] = true
		case err != nil:
			return fail(err)
		default:
			res.Backups++
			res.IDs = append(res.IDs, id)
		}
	}
	// What is left: orphans, drill reports, the backup and drill leases.
	for _, prefix := range []string{layout.Job(job), layout.DrillReports(job), layout.Lease(job), layout.DrillLease(job)} {
		var keys []string
		if vl, ok := d.Store.(storage.VersionKeyLister); ok {
			// Also keys whose current version is a delete marker: their
			// old versions are the tenant's data too.
			for k, err := range vl.VersionKeys(ctx, prefix) {
				if err != nil {
					return fail(err)
				}
				keys = append(keys, k)
			}
		} else {
			for obj, err := range d.Store.List(ctx, prefix) {
				if err != nil {
					return fail(err)
				}
				keys = append(keys, obj.Key)
			}
		}
		for _, k := range keys {
			if keep[path.Dir(k)+"/"] {
				continue
			}
			n, err := storage.Dispose(ctx, d.Store, k)
			res.Objects += n
			switch {
			case errors.Is(err, storage.ErrLocked):
				res.Locked = append(res.Locked, err.Error())
			case err != nil:
				return fail(err)
			}
		}
	}
	log.Info("purged job", zap.String("job", job), zap.String("destination", d.Name),
		zap.Int("backups", res.Backups), zap.Int("objects", res.Objects), zap.Int("locked", len(res.Locked)))
	return res
}
