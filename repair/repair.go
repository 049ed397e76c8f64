package repair

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
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
}

// Report says what a run did.
type Report struct {
	Copied []Copy    `json:"copied"`
	Failed []Failure `json:"failed"`
	// Unreachable maps the destinations that could not be listed to why.
	// They were neither read from nor written to.
	Unreachable map[string]string `json:"unreachable"`
}

// Copy is one backup copied to one destination.
type Copy struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	// Bytes is the payload's size.
	Bytes int64 `json:"bytes"`
	// Duration covers every attempt, backoff included.
	Duration time.Duration `json:"duration_ns"`
}

// Failure is one backup that could not be copied to one destination. The
// destination holds no manifest for it.
type Failure struct {
	ID  string `json:"id"`
	To  string `json:"to"`
	Err string `json:"error"`
}

// Run copies every backup of job that some of dests hold and other
// reachable dests lack, newest first. Destinations that cannot be listed
// are reported in Report.Unreachable and skipped; copies that fail after
// every attempt are reported in Report.Failed. Run returns an error only
// for invalid arguments or when ctx ends (with the report so far).
//
// A copy is made only from a source whose manifest verifies as trust
// says, and the manifest is copied byte for byte, so its signature stays
// valid at the target. A source whose manifest fails its signature is
// treated as corrupt.
func Run(ctx context.Context, job string, dests []storage.Destination, trust manifest.Trust, opts Options, log *zap.Logger) (Report, error) {
	rep := Report{Copied: []Copy{}, Failed: []Failure{}, Unreachable: map[string]string{}}
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

	entries, unreachable := restore.Catalog(ctx, job, dests)
	var reachable []storage.Destination
	for _, d := range dests {
		if err, ok := unreachable[d.Name]; ok {
			rep.Unreachable[d.Name] = err.Error()
			log.Warn("destination unreachable; not repaired", zap.String("destination", d.Name), zap.Error(err))
			continue
		}
		reachable = append(reachable, d)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	tasks := plan(entries, reachable, opts.MaxPerRun)
	if len(tasks) > 0 {
		log.Info("repair started", zap.Int("copies", len(tasks)))
	}
	for _, t := range tasks {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("repair %s: %w", job, err)
		}
		c := copier{job: job, id: t.id, target: t.target, trust: trust, opts: opts,
			log: log.With(zap.String("backup", t.id), zap.String("to", t.target.Name))}
		done, err := c.run(ctx, t.sources)
		if err != nil {
			rep.Failed = append(rep.Failed, Failure{ID: t.id, To: t.target.Name, Err: err.Error()})
			c.log.Error("repair failed; no manifest written", zap.Error(err))
			continue
		}
		rep.Copied = append(rep.Copied, done)
		c.log.Info("backup copied", zap.String("from", done.From), zap.Int64("bytes", done.Bytes), zap.Duration("duration", done.Duration))
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
}

// plan lists the copies to make: for each backup, newest first, every
// reachable destination that does not hold it, with the destinations that
// do as sources. At most limit tasks when limit > 0.
func plan(entries []restore.Entry, reachable []storage.Destination, limit int) []task {
	var tasks []task
	for _, e := range slices.Backward(entries) {
		var sources, targets []storage.Destination
		for _, d := range reachable {
			if slices.Contains(e.Destinations, d.Name) {
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
			tasks = append(tasks, task{id: e.ID, target: t, sources: sources})
		}
	}
	return tasks
}

// copier copies one backup to one target destination.
type copier struct {
	job, id string
	target  storage.Destination
	trust   manifest.Trust
	opts    Options
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
func (c *copier) writeManifest(ctx context.Context, m *manifest.Manifest) error {
	err := manifest.WriteCopy(ctx, c.target.Store, m)
	if !errors.Is(err, storage.ErrExist) {
		return err
	}
	// Someone else committed it meanwhile: fine if it is the same backup.
	got, rerr := manifest.Read(ctx, c.target.Store, c.target.Name, c.job, c.id, c.trust)
	if rerr != nil {
		return fmt.Errorf("%w; reading it: %v", err, rerr)
	}
	if got.Payload.Digest != m.Payload.Digest {
		return fmt.Errorf("%s already holds a manifest for %s/%s with a different payload", c.target.Name, c.job, c.id)
	}
	return nil
}
