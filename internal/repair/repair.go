package repair

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// Defaults for Options.
const (
	DefaultAttempts = 3
	DefaultBackoff  = 2 * time.Second
)

// Options tune a repair run. The zero value uses the defaults.
type Options struct {
	// Attempts is how often one copy is tried before it is reported as
	// failed (default 3).
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one (default 2s).
	Backoff time.Duration
	// MaxPerRun bounds the copies (one backup to one destination) made in
	// one run, newest backups first; 0 means no bound.
	MaxPerRun int
	// DryRun plans only: the report lists the steps in Planned and
	// nothing is read beyond the catalog or written.
	DryRun bool
}

// Actions of a step.
const (
	// ActionCopy copies a backup to a destination that holds nothing of it.
	ActionCopy = "copy"
	// ActionHeal copies a backup's payload to a destination that holds
	// its verified manifest but not its whole payload.
	ActionHeal = "heal"
	// ActionReplace deletes a manifest key that is not trusted (it is not
	// a backup) and copies the verified backup of that id in its place.
	ActionReplace = "replace"
	// ActionRemove removes a verified manifest whose payload no reachable
	// destination holds whole: it is not a backup.
	ActionRemove = "remove"
)

// Report says what a run did.
type Report struct {
	Copied []Copy    `json:"copied"`
	Failed []Failure `json:"failed"`
	// Removed are verified manifests removed because no destination holds
	// their payload whole.
	Removed []Removal `json:"removed"`
	// Planned are the steps a dry run would take (nil in a real run).
	Planned []Step `json:"planned,omitempty"`
	// Unreachable maps the destinations that could not be listed to why.
	// They were neither read from nor written to.
	Unreachable map[string]string `json:"unreachable"`
}

// Copy is one backup copied to one destination.
type Copy struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	// Action is ActionCopy, ActionHeal or ActionReplace.
	Action string `json:"action"`
	// Reason says, for a heal or a replace, what was wrong at To.
	Reason string `json:"reason,omitempty"`
	// Bytes is the payload's size.
	Bytes int64 `json:"bytes"`
	// Duration covers every attempt, backoff included.
	Duration time.Duration `json:"duration_ns"`
}

// Detail describes c for the audit trail.
func (c Copy) Detail() string {
	switch c.Action {
	case ActionHeal:
		return "healed (" + c.Reason + "): payload copied from " + c.From
	case ActionReplace:
		return "replaced an untrusted manifest (" + c.Reason + ") by the verified backup copied from " + c.From
	}
	return "copied from " + c.From
}

// Failure is one step that failed on one destination. A failed copy
// leaves the destination without a manifest for the backup (or with the
// one it had).
type Failure struct {
	ID     string `json:"id"`
	To     string `json:"to"`
	Action string `json:"action"`
	Err    string `json:"error"`
}

// Removal is a verified manifest removed from a destination because no
// destination holds its payload whole.
type Removal struct {
	ID          string `json:"id"`
	Destination string `json:"destination"`
	Reason      string `json:"reason"`
}

// Step is one planned step.
type Step struct {
	ID     string   `json:"id"`
	To     string   `json:"to"`
	From   []string `json:"from,omitempty"`
	Action string   `json:"action"`
	Reason string   `json:"reason,omitempty"`
}

// Run reads job's verified catalog on dests (manifest.ReadCatalog, every
// manifest checked as trust says) and repairs it as RunCatalog does.
func Run(ctx context.Context, job string, dests []storage.Destination, trust manifest.Trust, opts Options, log *zap.Logger) (Report, error) {
	if len(dests) == 0 {
		return Report{Copied: []Copy{}, Failed: []Failure{}, Removed: []Removal{}, Unreachable: map[string]string{}}, fmt.Errorf("repair %s: no destinations", job)
	}
	return RunCatalog(ctx, manifest.ReadCatalog(ctx, job, dests, trust, nil), dests, trust, opts, log)
}

// RunCatalog makes every reachable destination of dests hold every
// backup of cat whole, newest first, cat having been read from dests. A
// destination holds a backup only where the catalog says so (verified
// manifest, payload at its recorded size), so:
//
//   - a destination holding nothing of a backup gets a copy;
//   - one holding its verified manifest without the whole payload is
//     healed: the payload is copied from a destination that holds it;
//   - one holding a manifest key for it that is not trusted (planted,
//     forged, edited) gets that object deleted and the verified backup
//     copied in its place: the untrusted object is not a backup;
//   - a verified manifest whose payload no destination holds whole is
//     removed (it is not a backup), but only when every destination could
//     be listed: one that could not may hold it.
//
// Destinations that cannot be listed are reported in Report.Unreachable
// and skipped; steps that fail after every attempt are reported in
// Report.Failed. RunCatalog returns an error only for invalid arguments
// or when ctx ends (with the report so far).
//
// A copy is made only from a source whose manifest verifies as trust
// says, and the manifest is copied byte for byte, so its signature stays
// valid at the target.
func RunCatalog(ctx context.Context, cat *manifest.Catalog, dests []storage.Destination, trust manifest.Trust, opts Options, log *zap.Logger) (Report, error) {
	job := cat.Job
	rep := Report{Copied: []Copy{}, Failed: []Failure{}, Removed: []Removal{}, Unreachable: map[string]string{}}
	if len(dests) == 0 {
		return rep, fmt.Errorf("repair %s: no destinations", job)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	log = log.With(zap.String("job", job))

	var reachable []storage.Destination
	for _, d := range dests {
		if err, ok := cat.Unreachable[d.Name]; ok {
			rep.Unreachable[d.Name] = err.Error()
			log.Warn("destination unreachable; not repaired", zap.String("destination", d.Name), zap.Error(err))
			continue
		}
		reachable = append(reachable, d)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	tasks := plan(cat, reachable, opts.MaxPerRun)
	removals := orphanManifests(cat, reachable, len(reachable) == len(dests), log)
	if opts.DryRun {
		rep.Planned = []Step{}
		for _, t := range tasks {
			st := Step{ID: t.id, To: t.target.Name, Action: t.action, Reason: t.reason}
			for _, s := range t.sources {
				st.From = append(st.From, s.Name)
			}
			rep.Planned = append(rep.Planned, st)
		}
		for _, r := range removals {
			rep.Planned = append(rep.Planned, Step{ID: r.in.ID, To: r.dest.Name, Action: ActionRemove, Reason: r.in.Reason})
		}
		return rep, nil
	}
	if len(tasks)+len(removals) > 0 {
		log.Info("repair started", zap.Int("copies", len(tasks)), zap.Int("removals", len(removals)))
	}
	for _, t := range tasks {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("repair %s: %w", job, err)
		}
		c := copier{job: job, id: t.id, target: t.target, trust: trust, opts: opts, replace: t.action == ActionReplace,
			log: log.With(zap.String("backup", t.id), zap.String("to", t.target.Name), zap.String("action", t.action))}
		done, err := c.run(ctx, t.sources)
		if err != nil {
			rep.Failed = append(rep.Failed, Failure{ID: t.id, To: t.target.Name, Action: t.action, Err: err.Error()})
			c.log.Error("repair failed; no manifest written", zap.Error(err))
			continue
		}
		done.Action, done.Reason = t.action, t.reason
		rep.Copied = append(rep.Copied, done)
		c.log.Info("backup copied", zap.String("from", done.From), zap.Int64("bytes", done.Bytes), zap.Duration("duration", done.Duration))
	}
	for _, r := range removals {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("repair %s: %w", job, err)
		}
		if err := removeManifest(ctx, r.dest, r.in); err != nil {
			rep.Failed = append(rep.Failed, Failure{ID: r.in.ID, To: r.dest.Name, Action: ActionRemove, Err: err.Error()})
			log.Error("manifest without a payload not removed", zap.String("backup", r.in.ID), zap.String("destination", r.dest.Name), zap.Error(err))
			continue
		}
		rep.Removed = append(rep.Removed, Removal{ID: r.in.ID, Destination: r.dest.Name, Reason: r.in.Reason})
		log.Warn("manifest removed: no destination holds its payload whole, so it is not a backup",
			zap.String("backup", r.in.ID), zap.String("destination", r.dest.Name), zap.String("reason", r.in.Reason))
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("repair %s: %w", job, err)
	}
	return rep, nil
}

// task is one backup to copy to one destination.
type task struct {
	id      string
	target  storage.Destination
	sources []storage.Destination // in the order of dests
	action  string                // ActionCopy, ActionHeal or ActionReplace
	reason  string                // what is wrong at target, for a heal or a replace
}

// plan lists the copies to make: for each backup of cat, newest first,
// every reachable destination that does not hold it whole, with the
// destinations that do as sources. At most limit tasks when limit > 0.
func plan(cat *manifest.Catalog, reachable []storage.Destination, limit int) []task {
	type at struct{ dest, id string }
	wrong := map[at]task{}
	for _, in := range cat.Incomplete {
		wrong[at{in.Destination, in.ID}] = task{action: ActionHeal, reason: in.Reason}
	}
	for _, u := range cat.Untrusted {
		if u.ID != "" {
			wrong[at{u.Destination, u.ID}] = task{action: ActionReplace, reason: u.Reason}
		}
	}
	var tasks []task
	for _, b := range slices.Backward(cat.Backups) {
		var sources, targets []storage.Destination
		for _, d := range reachable {
			if slices.Contains(b.Destinations, d.Name) {
				sources = append(sources, d)
			} else {
				targets = append(targets, d)
			}
		}
		if len(sources) == 0 {
			continue
		}
		for _, t := range targets {
			if limit > 0 && len(tasks) == limit {
				return tasks
			}
			tk := task{id: b.ID, target: t, sources: sources, action: ActionCopy}
			if w, ok := wrong[at{t.Name, b.ID}]; ok {
				tk.action, tk.reason = w.action, w.reason
			}
			tasks = append(tasks, tk)
		}
	}
	return tasks
}

// removal is a verified manifest to remove from dest.
type removal struct {
	dest storage.Destination
	in   manifest.Incomplete
}

// orphanManifests lists the verified manifests of cat whose payload no
// destination holds whole: they are not backups. None when some
// destination could not be listed (complete is false): it may hold the
// payload.
func orphanManifests(cat *manifest.Catalog, reachable []storage.Destination, complete bool, log *zap.Logger) []removal {
	var out []removal
	for _, in := range cat.Incomplete {
		if _, ok := cat.Find(in.ID); ok {
			continue // healed from a whole copy
		}
		if !complete {
			log.Warn("verified manifest without its payload kept while a destination is unreachable (it may hold the payload)",
				zap.String("backup", in.ID), zap.String("destination", in.Destination), zap.String("reason", in.Reason))
			continue
		}
		for _, d := range reachable {
			if d.Name == in.Destination {
				out = append(out, removal{dest: d, in: in})
			}
		}
	}
	return out
}

// removeManifest deletes the manifest of in from d, then what is left of
// its payload there: without a whole payload anywhere it is not a backup.
// The manifest goes first, so an interruption leaves an orphan payload
// (swept later), never a manifest pointing at nothing.
func removeManifest(ctx context.Context, d storage.Destination, in manifest.Incomplete) error {
	key := manifest.Key(in.Manifest.Job, in.ID)
	if err := d.Store.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("delete %s on %s: %w", key, d.Name, err)
	}
	if err := d.Store.Delete(ctx, in.Manifest.Payload.Key); err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("delete short payload %s on %s (the sweep removes it after the grace): %w", in.Manifest.Payload.Key, d.Name, err)
	}
	return nil
}

// copier copies one backup to one target destination.
type copier struct {
	job, id string
	target  storage.Destination
	trust   manifest.Trust
	opts    Options
	// replace allows deleting a manifest at the target that does not
	// verify (the catalog listed it as untrusted) to write ours.
	replace bool
	log     *zap.Logger
}

// sourceError is a failure on the source side of a copy. Corrupt means the
// source's copy does not match its manifest: retrying it is pointless.
type sourceError struct {
	err     error
	corrupt bool
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// run tries the copy up to opts.Attempts times with backoff. Each attempt
// tries the sources in order; a corrupt source is dropped for the next
// attempts.
func (c *copier) run(ctx context.Context, sources []storage.Destination) (Copy, error) {
	start := time.Now()
	corrupt := map[string]error{}
	wait := c.opts.Backoff
	for attempt := 1; ; attempt++ {
		done, err := c.attempt(ctx, sources, corrupt)
		if err == nil {
			done.Duration = time.Since(start)
			return done, nil
		}
		if attempt >= c.opts.Attempts || len(corrupt) == len(sources) || ctx.Err() != nil {
			return Copy{}, err
		}
		c.log.Warn("copy attempt failed; retrying", zap.Int("attempt", attempt), zap.Duration("backoff", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return Copy{}, fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// attempt copies from the first source that works. A target-side failure
// ends the attempt: another source would not help.
func (c *copier) attempt(ctx context.Context, sources []storage.Destination, corrupt map[string]error) (Copy, error) {
	var msgs []string
	for _, src := range sources {
		if err, ok := corrupt[src.Name]; ok {
			msgs = append(msgs, err.Error())
			continue
		}
		bytes, err := c.copyFrom(ctx, src)
		if err == nil {
			return Copy{ID: c.id, From: src.Name, To: c.target.Name, Bytes: bytes}, nil
		}
		msgs = append(msgs, err.Error())
		var se *sourceError
		if !errors.As(err, &se) {
			break
		}
		if se.corrupt {
			corrupt[src.Name] = err
			c.log.Warn("source copy is corrupt; trying another source", zap.String("from", src.Name), zap.Error(err))
		}
	}
	return Copy{}, fmt.Errorf("copy %s/%s to %s: %s", c.job, c.id, c.target.Name, strings.Join(msgs, "; "))
}

// copyFrom copies the backup from src: payload, then manifest. It returns
// the payload's size.
func (c *copier) copyFrom(ctx context.Context, src storage.Destination) (int64, error) {
	m, err := manifest.Read(ctx, src.Store, src.Name, c.job, c.id, c.trust)
	if err != nil {
		var bad *manifest.SignatureError
		return 0, &sourceError{err: err, corrupt: errors.As(err, &bad)}
	}
	info, err := c.putPayload(ctx, src, m)
	if err != nil {
		return 0, err
	}
	if err := c.writeManifest(ctx, m); err != nil {
		return 0, err
	}
	return info.Size, nil
}

// putPayload makes the target hold m's payload: it keeps a matching
// leftover from an earlier interrupted repair, deletes one that does not
// match, and otherwise streams the payload from src through a check that
// aborts the target's upload on any mismatch.
func (c *copier) putPayload(ctx context.Context, src storage.Destination, m *manifest.Manifest) (storage.ObjectInfo, error) {
	key := m.Payload.Key
	for range 2 { // a second round only if the key appears between Stat and Create
		if info, ok, err := c.keepExisting(ctx, m); err != nil || ok {
			return info, err
		}
		st, err := src.Store.Stat(ctx, key)
		if err != nil {
			return storage.ObjectInfo{}, &sourceError{err: fmt.Errorf("payload on %s: %w", src.Name, err), corrupt: errors.Is(err, storage.ErrNotExist)}
		}
		if st.Size != m.Payload.Bytes {
			return storage.ObjectInfo{}, &sourceError{err: mismatch(src.Name, "payload size", m.Payload.Bytes, st.Size), corrupt: true}
		}
		rc, err := src.Store.Get(ctx, key)
		if err != nil {
			return storage.ObjectInfo{}, &sourceError{err: fmt.Errorf("payload on %s: %w", src.Name, err), corrupt: errors.Is(err, storage.ErrNotExist)}
		}
		cr := newChecked(rc, src.Name, m.Payload.Digest)
		info, err := storage.Create(ctx, c.target.Store, key, cr)
		rc.Close()
		switch {
		case cr.mismatch != nil:
			return storage.ObjectInfo{}, &sourceError{err: cr.mismatch, corrupt: true}
		case cr.readErr != nil:
			return storage.ObjectInfo{}, &sourceError{err: fmt.Errorf("read payload from %s: %w", src.Name, cr.readErr)}
		case errors.Is(err, storage.ErrExist):
			continue
		case err != nil:
			return storage.ObjectInfo{}, fmt.Errorf("write payload to %s: %w", c.target.Name, err)
		case info.Size != m.Payload.Bytes:
			// The check saw every byte; the store reports otherwise.
			_ = c.target.Store.Delete(context.WithoutCancel(ctx), key)
			return storage.ObjectInfo{}, fmt.Errorf("write payload to %s: stored %d bytes, want %d", c.target.Name, info.Size, m.Payload.Bytes)
		}
		return info, nil
	}
	return storage.ObjectInfo{}, fmt.Errorf("write payload to %s: %s keeps appearing while it is written", c.target.Name, key)
}

// keepExisting checks a payload already at the target's key (left by an
// interrupted repair). It reports ok when that payload matches m; one that
// does not is deleted.
func (c *copier) keepExisting(ctx context.Context, m *manifest.Manifest) (storage.ObjectInfo, bool, error) {
	key := m.Payload.Key
	info, err := c.target.Store.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotExist) {
		return storage.ObjectInfo{}, false, nil
	}
	if err != nil {
		return storage.ObjectInfo{}, false, fmt.Errorf("check payload on %s: %w", c.target.Name, err)
	}
	var bad error
	if info.Size != m.Payload.Bytes {
		bad = mismatch(c.target.Name, "payload size", m.Payload.Bytes, info.Size)
	} else {
		bad, err = c.checkTarget(ctx, m)
		if err != nil {
			return storage.ObjectInfo{}, false, err
		}
	}
	if bad == nil {
		c.log.Info("payload from an earlier repair matches; kept")
		return info, true, nil
	}
	c.log.Warn("payload from an earlier repair does not match; deleting it", zap.Error(bad))
	if err := c.target.Store.Delete(ctx, key); err != nil {
		return storage.ObjectInfo{}, false, fmt.Errorf("delete stale payload on %s: %w", c.target.Name, err)
	}
	return storage.ObjectInfo{}, false, nil
}

// checkTarget reads the target's payload back. bad is its mismatch with m;
// err a failure to read it.
func (c *copier) checkTarget(ctx context.Context, m *manifest.Manifest) (bad, err error) {
	rc, err := c.target.Store.Get(ctx, m.Payload.Key)
	if err != nil {
		return nil, fmt.Errorf("check payload on %s: %w", c.target.Name, err)
	}
	defer rc.Close()
	cr := newChecked(rc, c.target.Name, m.Payload.Digest)
	if err := drain(cr); cr.mismatch != nil {
		return cr.mismatch, nil
	} else if err != nil {
		return nil, fmt.Errorf("check payload on %s: %w", c.target.Name, err)
	}
	return nil, nil
}

// writeManifest commits the backup on the target: the source's manifest
// object, byte for byte (its signature covers its bytes), written
// create-only. Its copies keep naming the destinations that committed the
// backup when it was taken. putPayload has made sure the payload is
// there at its full size.
//
// When the key is taken, what is there decides: the same backup (another
// repair, or a verified manifest being healed) is fine; a verified
// manifest of another payload is an error; an object that does not
// verify is not a backup, and when the catalog listed it as untrusted
// (c.replace) it is deleted and ours written in its place.
func (c *copier) writeManifest(ctx context.Context, m *manifest.Manifest) error {
	for round := 0; ; round++ {
		err := manifest.WriteCopy(ctx, c.target.Store, m)
		if !errors.Is(err, storage.ErrExist) {
			return err
		}
		key := manifest.Key(c.job, c.id)
		data, rerr := readAll(ctx, c.target.Store, key)
		if rerr != nil {
			return fmt.Errorf("%w; reading it: %v", err, rerr)
		}
		got, derr := manifest.Decode(data, c.trust)
		if derr == nil && (got.Job != c.job || got.ID != c.id) {
			derr = fmt.Errorf("it describes backup %s/%s", got.Job, got.ID)
		}
		if derr == nil {
			if got.Payload.Digest != m.Payload.Digest {
				return fmt.Errorf("%s already holds a manifest for %s/%s with a different payload", c.target.Name, c.job, c.id)
			}
			return nil
		}
		if !c.replace || round > 0 {
			return fmt.Errorf("%w; it is not a trusted manifest of the backup: %v", err, derr)
		}
		c.log.Warn("deleting an untrusted manifest object to put the verified backup in its place", zap.String("key", key), zap.Error(derr))
		if err := c.target.Store.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete untrusted %s on %s: %w", key, c.target.Name, err)
		}
	}
}

// maxManifest bounds what readAll reads of a manifest object.
const maxManifest = 16 << 20

// readAll reads key from s, at most maxManifest bytes.
func readAll(ctx context.Context, s storage.Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifest))
}

// AuditEvents are the audit trail's records of what r did for job: one
// per copy, heal or replace ("ok"), removal ("removed") and failure
// ("failed"). A dry run has none.
func (r Report) AuditEvents(job string) []audit.Event {
	var evs []audit.Event
	for _, c := range r.Copied {
		evs = append(evs, audit.Event{Action: audit.ActionRepair, Job: job, BackupID: c.ID, Destination: c.To, Outcome: audit.OutcomeOK, Detail: c.Detail()})
	}
	for _, rm := range r.Removed {
		evs = append(evs, audit.Event{Action: audit.ActionRepair, Job: job, BackupID: rm.ID, Destination: rm.Destination, Outcome: audit.OutcomeRemoved,
			Detail: "verified manifest removed: no destination holds its payload whole (" + rm.Reason + ")"})
	}
	for _, f := range r.Failed {
		evs = append(evs, audit.Event{Action: audit.ActionRepair, Job: job, BackupID: f.ID, Destination: f.To, Outcome: audit.OutcomeFailed, Detail: f.Action + ": " + f.Err})
	}
	return evs
}
