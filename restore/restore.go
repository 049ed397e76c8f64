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
	Destinations []Destination
	Identities   []age.Identity
}

// Run restores the requested backup into loader. It tries the destinations
// holding the backup in order and falls back to the next one when a copy
// is unreachable or fails a check, resetting the loader when it had
// already received data. It returns the report also on failure.
//
// newLoader builds the loader once the backup's source is known (from the
// first readable manifest).
func Run(ctx context.Context, req Request, newLoader func(snapshot.Info) (snapshot.Loader, error), log *zap.Logger) (*Report, error) {
	start := time.Now()
	entry, err := Locate(ctx, req.Job, req.ID, req.Destinations)
	if err != nil {
		return nil, err
	}
	info, err := sourceInfo(ctx, req, entry)
	if err != nil {
		return nil, err
	}
	loader, err := newLoader(info)
	if err != nil {
		return nil, err
	}
	rep := &Report{Job: req.Job, ID: entry.ID, Target: loader.String()}
	log = log.With(zap.String("job", req.Job), zap.String("backup", entry.ID), zap.String("target", loader.String()))
	if err := loader.Prepare(ctx); err != nil {
		return rep, fmt.Errorf("restore target %s: %w", loader, err)
	}
	for _, d := range req.Destinations {
		if !slices.Contains(entry.Destinations, d.Name) {
			continue
		}
		m, n, err := restoreFrom(ctx, d, req.Job, entry.ID, req.Identities, loader)
		if err == nil {
			rep.ServedBy, rep.Manifest, rep.PlainBytes, rep.Duration = d.Name, m, n, time.Since(start)
			rep.Attempts = append(rep.Attempts, Attempt{Destination: d.Name})
			log.Info("restore finished", zap.String("served_by", d.Name), zap.Int64("bytes", n), zap.Duration("duration", rep.Duration))
			return rep, nil
		}
		rep.Attempts = append(rep.Attempts, Attempt{Destination: d.Name, Error: err.Error()})
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
	return rep, fmt.Errorf("backup %s/%s could not be restored from any destination: %s", req.Job, entry.ID, attemptsSummary(rep.Attempts))
}

// sourceInfo reads the backup's source description from the first
// destination whose manifest is readable.
func sourceInfo(ctx context.Context, req Request, entry Entry) (snapshot.Info, error) {
	var errs []error
	for _, d := range req.Destinations {
		if !slices.Contains(entry.Destinations, d.Name) {
			continue
		}
		m, err := manifest.Read(ctx, d.Store, d.Name, req.Job, entry.ID)
		if err == nil {
			return m.Source, nil
		}
		errs = append(errs, err)
	}
	return snapshot.Info{}, fmt.Errorf("backup %s/%s: no readable manifest: %w", req.Job, entry.ID, errors.Join(errs...))
}

// restoreFrom restores from one destination and returns how many plaintext
// bytes reached the loader.
func restoreFrom(ctx context.Context, d Destination, job, id string, ids []age.Identity, loader snapshot.Loader) (*manifest.Manifest, int64, error) {
	m, err := manifest.Read(ctx, d.Store, d.Name, job, id)
	if err != nil {
		return nil, 0, err
	}
	r, closeFn, err := openPayload(ctx, d, m, ids)
	if err != nil {
		return m, 0, err
	}
	defer closeFn()
	cr := &countReader{r: r}
	if err := loader.Load(ctx, cr); err != nil {
		return m, cr.n, err
	}
	return m, cr.n, nil
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
