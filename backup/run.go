package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// Job is everything one backup run needs.
type Job struct {
	Name         string
	Source       snapshot.Source
	Destinations []storage.Destination
	Recipients   []string // age public keys
	Level        int      // zstd level, 1..22
	Threads      int      // zstd encoder goroutines
	// StallTimeout drops a destination that accepts no data for this long
	// (default DefaultStallTimeout).
	StallTimeout time.Duration
	// Signer signs the manifests; required.
	Signer *sign.Signer
	// Trust verifies the job's earlier manifests, which Run reads (see
	// ReadPrior) while the dump runs, so that a destination slow to list
	// them does not hold the dump up: the newest verified one gives the
	// manifest's sequence number (1 with none) and the shrink check's
	// size. A manifest that does not verify is ignored.
	Trust manifest.Trust
	// MaxShrinkPercent fails a dump more than this many percent smaller
	// than the newest verified earlier backup (see Prior.ShrinkFloor): 0
	// refuses any shrink, 100 turns the check off. An empty dump always
	// fails.
	MaxShrinkPercent int
	// Version is Coffer's version (internal/buildinfo), recorded as the
	// manifest's coffer_version.
	Version string
}

// Outcome is how a run ended.
type Outcome string

// Outcomes of a run.
const (
	OK      = Outcome(audit.OutcomeOK)      // every destination committed the backup
	Partial = Outcome(audit.OutcomePartial) // some destinations committed it
	Failed  = Outcome(audit.OutcomeFailed)  // none did; nothing is visible anywhere
)

// DestinationResult is what happened at one destination.
type DestinationResult struct {
	Name     string        `json:"destination"`
	Store    string        `json:"store"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	Err      error         `json:"-"`
	Error    string        `json:"error,omitempty"`
}

// Result reports a run. Manifest is nil when the run failed.
type Result struct {
	Job          string              `json:"job"`
	ID           string              `json:"id"`
	Outcome      Outcome             `json:"outcome"`
	Manifest     *manifest.Manifest  `json:"manifest,omitempty"`
	Destinations []DestinationResult `json:"destinations"`
	// ClockWarning says that the host's clock disagreed with the
	// destinations' and how the backup was dated; "" when they agreed.
	ClockWarning string `json:"clock_warning,omitempty"`
}

// Run takes one backup of job. It returns an error only when no destination
// committed the backup (Outcome Failed); a partial run returns a Result
// with Outcome Partial and the per-destination errors.
//
// With a progress.Meter in ctx (internal/progress), Run reports its
// phases: the dump and its uploads, counting the plain bytes dumped
// against the size of the job's newest backup as an estimate, then the
// end of the uploads and the manifests.
func Run(ctx context.Context, job Job, log *zap.Logger) (*Result, error) {
	switch {
	case len(job.Destinations) == 0:
		return nil, fmt.Errorf("job %s: no destinations", job.Name)
	case job.Signer == nil:
		return nil, fmt.Errorf("job %s: no signing key: manifests must be signed (set signing.key_file)", job.Name)
	}
	meter := progress.FromContext(ctx)
	meter.Start(progress.Phase{Name: job.Name + ": dump and upload to " + destinationNames(job.Destinations), Unit: progress.Bytes})
	// The earlier manifests are needed only once the dump has ended; the
	// newest one's size is the dump's expected size meanwhile.
	var prior Prior
	priorCtx, cancelPrior := context.WithCancel(ctx)
	var priorRead sync.WaitGroup
	priorLog := log
	priorRead.Go(func() {
		prior = ReadPrior(priorCtx, job.Name, job.Destinations, job.Trust, job.StallTimeout, priorLog)
		meter.Expect(prior.PlainBytes)
	})
	defer func() { cancelPrior(); priorRead.Wait() }()
	recipients, err := seal.ParseRecipients(job.Recipients)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.Name, err)
	}
	info, err := job.Source.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.Name, err)
	}
	dating := checkDating(ctx, job.Destinations, log)
	if dating.warning != "" {
		log.Error("clock check: " + dating.warning)
	}
	started := dating.now()
	id := manifest.NewID(started)
	key := manifest.PayloadKey(job.Name, id, info.Format)
	log = log.With(zap.String("job", job.Name), zap.String("backup", id))
	log.Info("backup started", zap.String("source", info.Kind), zap.String("database", info.Database), zap.Int("destinations", len(job.Destinations)))

	uploadCtx, cancelUploads := context.WithCancel(ctx)
	defer cancelUploads()
	fan := newFanout(uploadCtx, job.Destinations, key, job.StallTimeout)

	var tables *dumpinfo.Tables
	enc, err := newEncoder(fan, recipients, job.Level, job.Threads)
	if err == nil {
		enc.meter = meter
		tables, err = job.Source.Dump(ctx, enc)
		if err != nil {
			err = fmt.Errorf("dump %s: %w", info.Database, err)
		}
	}
	if err == nil {
		err = enc.close()
	}
	if err == nil {
		priorRead.Wait()
		err = checkSize(enc.plain.digest().Bytes, prior.ShrinkFloor(job.MaxShrinkPercent))
	}
	if err == nil {
		err = ctx.Err()
	}
	res := &Result{Job: job.Name, ID: id, Outcome: Failed, ClockWarning: dating.warning}
	if err != nil {
		// Abort every upload: no payload becomes visible, no manifest.
		if enc != nil {
			enc.abort() // stop writers into the fan-out first
		}
		fan.finish(fmt.Errorf("backup aborted: %w", err))
		cancelUploads()
		res.Destinations = destinationResults(fan, err)
		log.Error("backup failed; every upload aborted, no manifest written", zap.Error(err))
		return res, fmt.Errorf("backup %s of job %s failed: %w", id, job.Name, err)
	}
	meter.Start(progress.Phase{Name: job.Name + ": finish the uploads and write the manifests"})
	fan.finish(nil)

	m := &manifest.Manifest{
		FormatVersion: manifest.FormatVersion,
		ID:            id,
		Job:           job.Name,
		Source:        info,
		Tables:        tables,
		Started:       started,
		Finished:      dating.now(),
		Plain:         enc.plain.digest(),
		Payload:       manifest.Payload{Key: key, Digest: enc.cipher.digest(), HeaderSHA256: enc.age.HeaderSHA256()},
		Compression:   manifest.Compression{Algorithm: "zstd", Level: job.Level},
		Encryption:    manifest.Encryption{Algorithm: "age", Recipients: job.Recipients},
		CofferVersion: job.Version,
		Sequence:      prior.NextSequence(),
	}
	m.Host, _ = os.Hostname()
	stored := storedCopies(fan, m)
	for _, s := range stored {
		m.Copies = append(m.Copies, manifest.Copy{Destination: s.dest.Name, Key: key, Bytes: s.info.Size, SHA256: m.Payload.SHA256})
	}
	// The manifests go to every destination at once: a distant offsite
	// bucket's round trips do not add to the primary's.
	var writes sync.WaitGroup
	for _, s := range stored {
		writes.Go(func() {
			s.err = commit(ctx, s.dest, m, job.Signer, job.Trust, log)
		})
	}
	writes.Wait()
	res.Destinations = destinationResults(fan, nil)
	committed := 0
	for _, d := range res.Destinations {
		if d.Err != nil {
			log.Error("destination failed", zap.String("destination", d.Name), zap.String("store", d.Store), zap.Error(d.Err))
			continue
		}
		committed++
		log.Info("destination stored backup", zap.String("destination", d.Name), zap.String("store", d.Store),
			zap.Int64("bytes", d.Bytes), zap.Duration("duration", d.Duration), zap.String("throughput", throughput(d.Bytes, d.Duration)))
	}
	switch {
	case committed == 0:
		log.Error("backup failed: no destination committed it")
		return res, fmt.Errorf("backup %s of job %s failed: no destination stored it", id, job.Name)
	case committed < len(res.Destinations):
		res.Outcome = Partial
	default:
		res.Outcome = OK
	}
	res.Manifest = m
	log.Info("backup finished", zap.String("outcome", string(res.Outcome)), zap.Int64("plain_bytes", m.Plain.Bytes),
		zap.Int64("stored_bytes", m.Payload.Bytes), zap.Duration("duration", m.Duration()))
	return res, nil
}

// storedCopies returns the sinks whose upload completed with the full
// payload; a size mismatch marks the sink failed.
func storedCopies(fan *fanout, m *manifest.Manifest) []*sink {
	var ok []*sink
	for _, s := range fan.sinks {
		if s.err != nil {
			continue
		}
		if s.info.Size != m.Payload.Bytes {
			s.err = fmt.Errorf("stored %d bytes, want %d", s.info.Size, m.Payload.Bytes)
			_ = s.dest.Store.Delete(context.Background(), m.Payload.Key)
			continue
		}
		ok = append(ok, s)
	}
	return ok
}

func destinationResults(fan *fanout, runErr error) []DestinationResult {
	var out []DestinationResult
	for _, s := range fan.sinks {
		r := DestinationResult{Name: s.dest.Name, Store: s.dest.Store.String(), Bytes: s.info.Size, Duration: s.elapsed, Err: s.err}
		if runErr != nil && r.Err == nil {
			r.Err = errors.New("aborted")
		}
		if r.Err != nil {
			r.Error = r.Err.Error()
			r.Bytes = 0
		}
		out = append(out, r)
	}
	return out
}

// destinationNames lists the destinations' names: "primary, offsite".
func destinationNames(dests []storage.Destination) string {
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

func throughput(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}

// encoder is the chain plain -> sha256 -> zstd frames -> age -> sha256 ->
// out. Reading the dump, compressing (on several goroutines) and
// encrypting and uploading run side by side.
type encoder struct {
	plain  *counter
	zstd   *frameWriter
	age    *seal.Writer
	cipher *counter
	meter  *progress.Meter // counts the plain bytes; may be nil
}

func newEncoder(out io.Writer, recipients []age.Recipient, level, threads int) (*encoder, error) {
	e := &encoder{cipher: newCounter(out)}
	aw, err := seal.Encrypt(e.cipher, recipients)
	if err != nil {
		return nil, err
	}
	e.age = aw
	zw, err := newFrameWriter(aw, level, threads)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	e.zstd = zw
	e.plain = newCounter(zw)
	return e, nil
}

func (e *encoder) Write(p []byte) (int, error) {
	n, err := e.plain.Write(p)
	e.meter.Add(int64(n))
	return n, err
}

// close flushes zstd then age; both errors matter (age's Close writes the
// final chunk).
func (e *encoder) close() error {
	if err := e.zstd.Close(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if err := e.age.Close(); err != nil {
		return fmt.Errorf("age: %w", err)
	}
	return nil
}

// abort stops the compression goroutines so nothing writes to out any
// more; output is discarded.
func (e *encoder) abort() { e.zstd.abort() }

// counter passes writes through while counting and hashing them.
type counter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newCounter(w io.Writer) *counter { return &counter{w: w, h: sha256.New()} }

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *counter) digest() manifest.Digest {
	return manifest.Digest{Bytes: c.n, SHA256: hex.EncodeToString(c.h.Sum(nil))}
}

// checkSize refuses an empty dump, or one below min: a source that dumps
// nothing (a wrong database, an emptied table space) must not pass as a
// good backup.
func checkSize(n, min int64) error {
	switch {
	case n == 0:
		return errors.New("the dump is empty: the source wrote no data")
	case n < min:
		return fmt.Errorf("the dump is %d bytes, less than %d (the previous backup's size less max_shrink_percent): "+
			"the source may be broken or emptied; if the shrink is expected, raise max_shrink_percent or run coffer backup --allow-shrink", n, min)
	}
	return nil
}
