package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// Options are what Gather needs besides the configuration.
type Options struct {
	// Now and Since set the window; Gather reads audit events from a
	// little before its first week.
	Now   time.Time
	Since time.Duration
	// AuditLog is this host's local audit log (audit.FileName in the
	// state directory); "" for none. A missing file is no error.
	AuditLog string
	// Trust decides about manifests' signatures, as for a restore.
	Trust manifest.Trust
}

// Gather reads what Evaluate needs about jobs: from every destination of
// each job, the manifests present (each read, verified as opt.Trust says
// and checked against its payload's size); the drill reports in the
// job's drill source (verified the same way); and the audit trail, from opt.AuditLog and from the
// audit objects in the first destination of every job in cfg (a host
// ships all its events to the job it last ran, so any of them may hold
// this job's). It reads only and deletes nothing.
//
// A destination that cannot be opened or listed, an unreadable part of
// the audit trail, a manifest or a drill report that does not check out
// is recorded in the Input for Evaluate to report, not returned: Gather's
// error is only ever the context's.
func Gather(ctx context.Context, cfg *config.Config, jobs []*config.Job, opt Options) (Input, error) {
	in := Input{Now: opt.Now, Since: opt.Since}
	stores := storeCache{cfg: cfg, open: map[string]storeOrErr{}}
	// Events of the window's first week, in any time zone.
	since := weekStart(opt.Now.Add(-opt.Since), time.UTC).Add(-2 * config.Day)
	events, auditErrs := readAudit(ctx, cfg, &stores, opt.AuditLog, since)
	unproven := verifyAudit(ctx, cfg, &stores, opt.AuditLog, opt.Trust, events)
	firstEvents, err := firstAudit(ctx, cfg, &stores, opt.AuditLog)
	if err != nil && len(auditErrs) == 0 { // else the same part failed twice
		auditErrs = append(auditErrs, err)
	}
	for _, j := range jobs {
		ji := JobInput{Job: j, AuditErrors: auditErrs, FirstEvent: firstEvents[j.Name]}
		for _, ev := range events {
			if ev.Job == j.Name {
				ji.Events = append(ji.Events, ev)
				if why, ok := unproven[ev.ID]; ok {
					if ji.UnprovenEvents == nil {
						ji.UnprovenEvents = map[string]string{}
					}
					ji.UnprovenEvents[ev.ID] = why
				}
			}
		}
		for i, name := range j.Destinations {
			d := DestinationInput{Name: name, Role: RoleOffsite}
			if i == 0 {
				d.Role = RolePrimary
			}
			if c := cfg.Destinations[name]; c != nil && c.ObjectLock != nil {
				d.ObjectLock = c.ObjectLock.Mode
			}
			if s, err := stores.get(ctx, name); err != nil {
				d.Err = err
			} else {
				readBackups(ctx, s, j.Name, opt.Trust, &d)
			}
			ji.Destinations = append(ji.Destinations, d)
		}
		if j.Drill.From == "" {
			ji.DrillErr = fmt.Errorf("job %s has no drill source (drill.from)", j.Name)
		} else if s, err := stores.get(ctx, j.Drill.From); err != nil {
			ji.DrillErr = err
		} else {
			trust := opt.Trust
			trust.Warn = func(object string, err error) {
				if ji.UnverifiedDrills == nil {
					ji.UnverifiedDrills = map[string]error{}
				}
				ji.UnverifiedDrills[object] = err
				if opt.Trust.Warn != nil {
					opt.Trust.Warn(object, err)
				}
			}
			ji.Drills, ji.BadDrills, ji.DrillErr = drill.ReadReports(ctx, s, j.Name, trust)
		}
		in.Jobs = append(in.Jobs, ji)
	}
	return in, ctx.Err()
}

// readBackups fills d with job's backups on s, from the verified catalog
// of that destination: the manifests that check out (signature, the
// backup their key names, payload present at the recorded size), and the
// keys that do not, with the reason.
func readBackups(ctx context.Context, s storage.Store, job string, trust manifest.Trust, d *DestinationInput) {
	var mu sync.Mutex
	unverified := map[string]error{} // object -> why, for manifests accepted only by SkipSignature
	warn := trust.Warn
	trust.Warn = func(object string, err error) {
		mu.Lock()
		unverified[object] = err
		mu.Unlock()
		if warn != nil {
			warn(object, err)
		}
	}
	c := manifest.ReadCatalog(ctx, job, []storage.Destination{{Name: d.Name, Store: s}}, trust, nil)
	if err := c.Unreachable[d.Name]; err != nil {
		d.Err = err
		return
	}
	for _, u := range c.Untrusted {
		d.Bad = append(d.Bad, BadBackup{ID: cmp.Or(u.ID, u.Key), Err: u.Err})
	}
	for _, in := range c.Incomplete {
		d.Bad = append(d.Bad, BadBackup{ID: in.ID, Err: errors.New(in.Reason)})
	}
	slices.SortFunc(d.Bad, func(a, b BadBackup) int { return cmp.Compare(a.ID, b.ID) })
	for _, b := range c.Backups {
		if err := unverified[manifest.Key(job, b.ID)+" on "+d.Name]; err != nil {
			d.Unverified = append(d.Unverified, BadBackup{ID: b.ID, Err: err})
		}
		d.Manifests = append(d.Manifests, b.Manifest)
	}
}

// readAudit reads the audit events since since from the local log and
// from the first destination of every job in cfg, each event once. The
// errors name each part that could not be read; the rest is returned.
func readAudit(ctx context.Context, cfg *config.Config, stores *storeCache, local string, since time.Time) ([]audit.Event, []error) {
	var all []audit.Event
	var errs []error
	seen := map[string]bool{}
	add := func(evs []audit.Event) {
		for _, ev := range evs {
			if !seen[ev.ID] {
				seen[ev.ID] = true
				all = append(all, ev)
			}
		}
	}
	if local != "" {
		evs, err := audit.Read(ctx, local, nil, since)
		if err != nil {
			errs = append(errs, fmt.Errorf("local audit log: %w", err))
		}
		add(evs)
	}
	for _, name := range audit.Destinations(cfg) {
		s, err := stores.get(ctx, name)
		if err == nil {
			var evs []audit.Event
			evs, err = audit.Read(ctx, "", []storage.Store{s}, since)
			add(evs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("audit trail in %s: %w", name, err))
		}
	}
	slices.SortFunc(all, func(a, b audit.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	return all, errs
}

// firstAudit returns the time of each job's earliest audit event, from
// the whole trail: the local log and the first destination of every job
// in cfg, as readAudit reads them. Its error names what could not be
// read; the times found are returned with it.
func firstAudit(ctx context.Context, cfg *config.Config, stores *storeCache, local string) (map[string]time.Time, error) {
	var dests []storage.Store
	for _, name := range audit.Destinations(cfg) {
		// One that cannot be opened is in the AuditErrors (readAudit).
		if s, err := stores.get(ctx, name); err == nil {
			dests = append(dests, s)
		}
	}
	first, err := audit.FirstByJob(ctx, local, dests)
	if err != nil {
		return nil, fmt.Errorf("audit trail before the window: %w", err)
	}
	return first, nil
}

// verifyAudit checks the audit trail's chains and signed heads (the local
// log and the first destination of every job, as readAudit reads them)
// with trust's verifier and returns the events among evs that are not
// proven, by ID, with why. When the trail cannot be read to the end, no
// event is proven.
func verifyAudit(ctx context.Context, cfg *config.Config, stores *storeCache, local string, trust manifest.Trust, evs []audit.Event) map[string]string {
	var dests []storage.Destination
	for _, name := range audit.Destinations(cfg) {
		// One that cannot be opened is in the AuditErrors (readAudit),
		// and none of its events is read.
		if s, err := stores.get(ctx, name); err == nil {
			dests = append(dests, storage.Destination{Name: name, Store: s})
		}
	}
	v, err := audit.Verify(ctx, local, dests, trust.Verifier)
	out := map[string]string{}
	for _, ev := range evs {
		switch {
		case err != nil:
			out[ev.ID] = fmt.Sprintf("the audit trail could not be verified: %v", err)
		case !v.Proven(ev.ID):
			out[ev.ID] = cmp.Or(v.Unproven()[ev.ID], "not found when the audit trail was verified")
		}
	}
	return out
}

// storeCache opens each destination once.
type storeCache struct {
	cfg  *config.Config
	open map[string]storeOrErr
}

type storeOrErr struct {
	s   storage.Store
	err error
}

// get returns the store of the destination named name.
func (c *storeCache) get(ctx context.Context, name string) (storage.Store, error) {
	if so, ok := c.open[name]; ok {
		return so.s, so.err
	}
	var so storeOrErr
	if d := c.cfg.Destinations[name]; d == nil {
		so.err = fmt.Errorf("destination %s is not in the configuration", name)
	} else {
		so.s, so.err = open.Store(ctx, d)
	}
	c.open[name] = so
	return so.s, so.err
}
