package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/seal"
	"github.com/coffer-backup/coffer/snapshot"
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
}

// Request names the backup to restore and where to look for it.
type Request struct {
	Job string
	// ID of the backup; empty means the newest complete backup.
	ID string
	// Destinations in the order to try them.
	Destinations []storage.Destination
	Identities   []age.Identity
	// Trust decides about manifest signatures; a manifest it refuses is a
	// bad copy, and the next destination is tried.
	Trust manifest.Trust
}

// Run restores the requested backup. It tries the destinations holding
// the backup in order and falls back to the next one when a copy is
// unreachable or fails a check, resetting the loader when it had already
// received data. newLoader builds the loader from the first manifest read
// (it needs the backup's source and format). The report is returned also
// on failure.
//
// The target is prepared (for a forced restore: emptied, or staged beside
// it) only once a copy's manifest signature, payload size and age header
// (hash, and that an identity opens it) have been checked, so a bucket
// whose every copy is forged, unreadable or for other keys leaves the
// target untouched. A loader that stages (snapshot.Staged) is committed
// after the load passed every check (SHA-256 and sizes at the end of the
// stream, the loading tool's success), and aborted on any failure.
func Run(ctx context.Context, req Request, newLoader func(snapshot.Info) (snapshot.Loader, error), log *zap.Logger) (rep *Report, err error) {
	start := time.Now()
	entry, err := Locate(ctx, req.Job, req.ID, req.Destinations)
	if err != nil {
		return nil, err
	}
	rep = &Report{Job: req.Job, ID: entry.ID}
	log = log.With(zap.String("job", req.Job), zap.String("backup", entry.ID))
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
		if !slices.Contains(entry.Destinations, d.Name) {
			continue
		}
		var n int64
		m, err := manifest.Read(ctx, d.Store, d.Name, req.Job, entry.ID, req.Trust)
		if err == nil {
			n, err = loadCopy(ctx, d, m, req.Identities, &loader, newLoader)
		}
		if err == nil {
			rep.Target = loader.String()
			if staged, ok := loader.(snapshot.Staged); ok {
				if err := staged.Commit(ctx); err != nil {
					return rep, fmt.Errorf("backup %s/%s from %s: %w", req.Job, entry.ID, d.Name, err)
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
			return rep, fmt.Errorf("backup %s/%s: %w", req.Job, entry.ID, err)
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
		msg:  fmt.Sprintf("backup %s/%s could not be restored from any destination: %s", req.Job, entry.ID, attemptsSummary(rep.Attempts)),
		errs: errs,
	}
}

// loadCopy opens the payload m describes on d (its size, age header and
// identity checked), prepares the loader if this is the first copy that
// got this far, and streams the payload into it, returning how many
// plaintext bytes reached the loader. A failure to build or prepare the
// loader is a *prepareError: no other copy would fare better.
func loadCopy(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity, loader *snapshot.Loader, newLoader func(snapshot.Info) (snapshot.Loader, error)) (int64, error) {
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
	cr := &countReader{r: r}
	err = (*loader).Load(ctx, cr)
	return cr.n, err
}

// prepareError is a restore target that could not be built or prepared.
type prepareError struct{ err error }

func (e *prepareError) Error() string { return e.err.Error() }
func (e *prepareError) Unwrap() error { return e.err }

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
func prepare(ctx context.Context, info snapshot.Info, newLoader func(snapshot.Info) (snapshot.Loader, error)) (snapshot.Loader, error) {
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
func Load(ctx context.Context, d storage.Destination, m *manifest.Manifest, ids []age.Identity, loader snapshot.Loader) (int64, error) {
	r, closeFn, err := openPayload(ctx, d, m, ids)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	cr := &countReader{r: r}
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

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
