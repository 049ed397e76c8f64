package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// Attempt is one destination tried during a restore.
type Attempt struct {
	Destination string `json:"destination"`
	Error       string `json:"error,omitempty"`
}

// Report says what a restore did.
type Report struct {
	Job        string             `json:"job"`
	ID         string             `json:"id"`
	ServedBy   string             `json:"served_by"`
	Target     string             `json:"target"`
	Manifest   *manifest.Manifest `json:"manifest"`
	PlainBytes int64              `json:"plain_bytes"`
	Duration   time.Duration      `json:"duration_ns"`
	Attempts   []Attempt          `json:"attempts"`
	// Untrusted are the job's manifest keys that were not used, with the
	// reason (signature, format, a key that names another backup).
	Untrusted []manifest.Untrusted `json:"untrusted"`
	// Incomplete are the job's verified manifests whose payload is missing
	// or short on a destination: those copies were not tried.
	Incomplete []manifest.Incomplete `json:"incomplete"`
	// Load says how the copy that served was loaded: workers, timed
	// steps, and why a parallel restore asked for was not done.
	Load snapshot.LoadReport `json:"load"`
}

// Request names the backup to restore and where to look for it.
type Request struct {
	Job string
	// ID of the backup; empty means the newest backup that verifies and
	// is whole on some destination.
	ID string
	// Destinations in the order to try them.
	Destinations []storage.Destination
	Identities   []age.Identity
	// Trust decides about manifest signatures: a manifest it refuses is
	// never used (it is listed in the report's Untrusted).
	Trust manifest.Trust
	// Parallel asks a loader that can (PostgreSQL custom format) to
	// restore with several workers from a spool file.
	Parallel snapshot.Parallel
}

// Run restores the requested backup, chosen from the job's verified
// catalog (manifest.ReadCatalog): a manifest key that does not verify, or
// whose payload is not whole, is never chosen, however new its id. It
// tries the destinations holding the backup whole in order and falls back
// to the next one when a copy is unreachable or fails a check, resetting
// the loader when it had already received data. newLoader builds the
// loader from the backup's manifest (it needs the backup's source and
// format). The report is returned also on failure, with the keys that
// were not used.
//
// The target is prepared (for a forced restore: emptied, or staged beside
// it) only once a copy's payload size and age header (hash, and that an
// identity opens it) have been checked, so a bucket whose every copy is
// forged, unreadable or for other keys leaves the target untouched. A
// loader that stages (snapshot.Staged) is committed after the load passed
// every check (SHA-256 and sizes at the end of the stream, the loading
// tool's success), and aborted on any failure.
//
// With a progress.Meter in ctx (internal/progress), Run reports its
// phases: finding the backup, then for each copy tried "download from
// DEST", counting the plaintext bytes handed to the loader up to the
// manifest's plain size (a loader may rename the phase, "download and
// spool", and add its own, pg_restore's sections).
func Run(ctx context.Context, req Request, newLoader func(dumpinfo.Info) (snapshot.Loader, error), log *zap.Logger) (rep *Report, err error) {
	start := time.Now()
	progress.FromContext(ctx).Start(progress.Phase{Name: "find the backup"})
	cat := manifest.ReadCatalog(ctx, req.Job, req.Destinations, req.Trust, nil)
	rep = &Report{Job: req.Job, Untrusted: sortedUntrusted(cat.Untrusted), Incomplete: sortedIncomplete(cat.Incomplete)}
	b, err := cat.Locate(req.ID)
	if err != nil {
		return rep, err
	}
	rep.ID = b.ID
	log = log.With(zap.String("job", req.Job), zap.String("backup", b.ID))
	for _, u := range rep.Untrusted {
		log.Warn("manifest not trusted; not used", zap.String("destination", u.Destination), zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	m := b.Manifest
	var loader snapshot.Loader
	defer func() {
		staged, ok := loader.(snapshot.Staged)
		if err == nil || !ok {
			return
		}
		if aerr := staged.Abort(context.WithoutCancel(ctx)); aerr != nil {
			err = fmt.Errorf("%w; and %v", err, aerr)
		}
	}()
	var errs []error
	for _, d := range req.Destinations {
		if !slices.Contains(b.Destinations, d.Name) {
			continue
		}
		n, err := loadCopy(ctx, d, m, req.Identities, &loader, func(info dumpinfo.Info) (snapshot.Loader, error) {
			l, err := newLoader(info)
			if pl, ok := l.(snapshot.ParallelLoader); ok && err == nil {
				par := req.Parallel
				par.Head = m.ArchiveHead()
				pl.SetParallel(par, m.Plain.Bytes, m.TableCount())
			}
			return l, err
		})
		if r, ok := loader.(snapshot.Reporter); ok {
			rep.Load = r.LoadReport()
		}
		if err == nil {
			rep.Target = loader.String()
			if staged, ok := loader.(snapshot.Staged); ok {
				if err := staged.Commit(ctx); err != nil {
					return rep, fmt.Errorf("backup %s/%s from %s: %w", req.Job, b.ID, d.Name, err)
				}
			}
			rep.ServedBy, rep.Manifest, rep.PlainBytes, rep.Duration = d.Name, m, n, time.Since(start)
			rep.Attempts = append(rep.Attempts, Attempt{Destination: d.Name})
			log.Info("restore finished", zap.String("target", rep.Target), zap.String("served_by", d.Name), zap.Int64("bytes", n), zap.Duration("duration", rep.Duration))
			return rep, nil
		}
		var prep *prepareError
		if errors.As(err, &prep) {
			return rep, prep.err
		}
		if loader != nil {
			rep.Target = loader.String()
		}
		rep.Attempts = append(rep.Attempts, Attempt{Destination: d.Name, Error: err.Error()})
		errs = append(errs, err)
		var wrong *seal.WrongIdentityError
		if errors.As(err, &wrong) {
			return rep, fmt.Errorf("backup %s/%s: %w", req.Job, b.ID, err)
		}
		log.Warn("copy unusable, trying the next destination", zap.String("destination", d.Name), zap.Error(err))
		if n > 0 {
			if rerr := loader.Reset(ctx); rerr != nil {
				return rep, fmt.Errorf("%w; and resetting %s for a retry failed: %v", err, loader, rerr)
			}
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, &allFailedError{
		msg:  fmt.Sprintf("backup %s/%s could not be restored from any destination: %s", req.Job, b.ID, attemptsSummary(rep.Attempts)),
		errs: errs,
	}
}

// loadCopy opens the payload m describes on d (its size, age header and
// identity checked), prepares the loader if this is the first copy that
// got this far, and streams the payload into it, returning how many
// plaintext bytes reached the loader. A failure to build or prepare the
// loader is a *prepareError: no other copy would fare better.
func loadCopy(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity, loader *snapshot.Loader, newLoader func(dumpinfo.Info) (snapshot.Loader, error)) (int64, error) {
	meter := startDownload(ctx, d, m)
	r, closeFn, err := openPayload(ctx, d, m, ids)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	if *loader == nil {
		l, err := prepare(ctx, m.Source, newLoader)
		if err != nil {
			return 0, &prepareError{err}
		}
		*loader = l
	}
	cr := &countReader{r: r, meter: meter}
	err = (*loader).Load(ctx, cr)
	return cr.n, err
}

// startDownload starts the progress phase of loading m's payload from d
// (see internal/progress), counting plaintext bytes up to the manifest's
// plain size, and returns the context's Meter (nil without one).
func startDownload(ctx context.Context, d storage.Destination, m *manifest.Manifest) *progress.Meter {
	meter := progress.FromContext(ctx)
	meter.Start(progress.Phase{Name: "download", Destination: d.Name, Unit: progress.Bytes, Total: m.Plain.Bytes})
	return meter
}

// prepareError is a restore target that could not be built or prepared.
type prepareError struct{ err error }

func (e *prepareError) Error() string { return e.err.Error() }
func (e *prepareError) Unwrap() error { return e.err }

// sortedUntrusted returns us sorted by destination and key (a stable order
// for output), never nil.
func sortedUntrusted(us []manifest.Untrusted) []manifest.Untrusted {
	out := append([]manifest.Untrusted{}, us...)
	slices.SortFunc(out, func(a, b manifest.Untrusted) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// sortedIncomplete returns in sorted by destination and id, never nil.
func sortedIncomplete(in []manifest.Incomplete) []manifest.Incomplete {
	out := append([]manifest.Incomplete{}, in...)
	slices.SortFunc(out, func(a, b manifest.Incomplete) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// allFailedError is a restore that no destination could serve. Its message
// summarises every attempt; it unwraps to each attempt's error (for
// errors.As, e.g. a *manifest.SignatureError).
type allFailedError struct {
	msg  string
	errs []error
}

func (e *allFailedError) Error() string   { return e.msg }
func (e *allFailedError) Unwrap() []error { return e.errs }

// prepare builds the loader for a backup of info and readies its target.
func prepare(ctx context.Context, info dumpinfo.Info, newLoader func(dumpinfo.Info) (snapshot.Loader, error)) (snapshot.Loader, error) {
	loader, err := newLoader(info)
	if err != nil {
		return nil, err
	}
	if err := loader.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("restore target %s: %w", loader, err)
	}
	return loader, nil
}

// Load streams the backup m describes from d into a prepared loader,
// checking it on the way (age header, authentication, zstd framing, size
// and SHA-256), without falling back to another destination, and returns
// how many plaintext bytes reached the loader. Run calls it for each
// destination it tries; drills call it for the one they were told to use.
// Its progress is reported as Run's download phase.
func Load(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity, loader snapshot.Loader) (int64, error) {
	meter := startDownload(ctx, d, m)
	r, closeFn, err := openPayload(ctx, d, m, ids)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	cr := &countReader{r: r, meter: meter}
	err = loader.Load(ctx, cr)
	return cr.n, err
}

func attemptsSummary(as []Attempt) string {
	s := ""
	for i, a := range as {
		if i > 0 {
			s += "; "
		}
		s += a.Destination + ": " + a.Error
	}
	if s == "" {
		return "no destination holds it"
	}
	return s
}

// countReader counts the plaintext read through it, also in a progress
// Meter (an atomic add; nothing when meter is nil).
type countReader struct {
	r     io.Reader
	n     int64
	meter *progress.Meter
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.meter.Add(int64(n))
	return n, err
}
