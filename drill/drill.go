package drill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// Options say what to drill and how.
type Options struct {
	// Config is the whole configuration: scratch names are checked
	// against every database it names.
	Config *config.Config
	Job    *config.Job
	// From is the destination drilled from.
	From storage.Destination
	// ID of the backup; empty means the newest complete backup on From.
	ID         string
	Identities []age.Identity
	// Trust checks the manifest's signature.
	Trust manifest.Trust
	// Keep leaves the scratch database in place for debugging.
	Keep bool
	// Parallel is how a PostgreSQL custom-format backup is restored into
	// the scratch database (spooled, then pg_restore --jobs), as `coffer
	// restore` does, so the drill times the restore an operator would run.
	Parallel snapshot.Parallel
	// Host and Version are recorded in the report.
	Host, Version string
	// NewScratch builds the scratch database; nil means
	// snapshot.NewScratch on the job's drill target.
	NewScratch func(info dumpinfo.Info, name string) (snapshot.Scratch, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *zap.Logger
}

// Run performs one drill and returns its report, also when the drill
// fails (then with Result Failed and the error). The report is nil only
// when opts are unusable.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Job == nil || opts.From.Store == nil {
		return nil, errors.New("drill: no job or source destination")
	}
	d := &run{Options: opts}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	err := d.do(ctx)
	return d.finish(err), err
}

// run is one drill in progress.
type run struct {
	Options
	rep     *Report
	m       *manifest.Manifest
	scratch snapshot.Scratch
	created bool // the scratch database exists because of this drill
}

func (d *run) do(ctx context.Context) error {
	job := d.Job
	start := d.Now()
	d.rep = &Report{
		FormatVersion: ReportFormatVersion,
		ID:            manifest.NewID(start),
		Job:           job.Name,
		From:          d.From.Name,
		Host:          d.Host,
		CofferVersion: d.Version,
		Started:       start.UTC(),
		RTOSeconds:    job.RTO.D().Seconds(),
		WarnRatio:     float64(job.Drill.WarnPercent) / 100,
		// False until the manifest's signature verified in locate.
		ManifestVerified: new(bool),
	}
	d.Log = d.Log.With(zap.String("job", job.Name), zap.String("drill", d.rep.ID), zap.String("from", d.From.Name))
	d.Log.Info("drill started")

	if err := d.phase(ctx, PhaseLocate, d.locate); err != nil {
		return err
	}
	loadErr := d.phase(ctx, PhaseLoad, d.restore)
	var validateErr error
	if loadErr == nil {
		validateErr = d.phase(ctx, PhaseValidate, d.validate)
	}
	cleanupErr := d.phase(context.WithoutCancel(ctx), PhaseCleanup, d.cleanup)
	return errors.Join(loadErr, validateErr, cleanupErr)
}

// progressPhases name the drill's phases in its progress (see
// internal/progress); the load phase's come from restore.Load and the
// loader, the cleanup's from cleanup when it drops the scratch database.
var progressPhases = map[string]string{
	PhaseLocate:   "find the backup",
	PhaseValidate: "validate (row counts, checks)",
}

// phase runs fn as the named phase, timing it into the report.
func (d *run) phase(ctx context.Context, name string, fn func(context.Context) error) error {
	if label, ok := progressPhases[name]; ok {
		progress.FromContext(ctx).Start(progress.Phase{Name: label})
	}
	t := d.Now()
	err := fn(ctx)
	p := Phase{Name: name, Seconds: d.Now().Sub(t).Seconds()}
	if err != nil {
		p.Error = err.Error()
	}
	d.rep.Phases = append(d.rep.Phases, p)
	d.Log.Info("drill phase finished", zap.String("phase", name), zap.Float64("seconds", p.Seconds), zap.Bool("ok", err == nil))
	return err
}

// locate finds the backup on the source destination in its verified
// catalog (a planted or forged manifest key is never chosen, and is
// logged), and checks the scratch target is free.
func (d *run) locate(ctx context.Context) error {
	cat := manifest.ReadCatalog(ctx, d.Job.Name, []storage.Destination{d.From}, d.Trust, nil)
	for _, u := range cat.Untrusted {
		d.Log.Warn("manifest not trusted; not used", zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	b, err := cat.Locate(d.ID)
	if err != nil {
		return fmt.Errorf("drill from %s: %w", d.From.Name, err)
	}
	d.rep.Backup = b.ID
	m := b.Manifest
	d.m = m
	verified := m.SignedBy != ""
	d.rep.ManifestVerified, d.rep.ManifestSignedBy = &verified, m.SignedBy
	if !verified {
		d.Log.Warn("backup manifest signature NOT verified: this drill is no evidence for the compliance report")
	}
	d.rep.PayloadBytes = m.Payload.Bytes
	if m.Tables != nil {
		d.rep.CountsExact = m.Tables.Exact
	}
	name, err := d.scratchName(m.Source)
	if err != nil {
		return err
	}
	newScratch := d.NewScratch
	if newScratch == nil {
		newScratch = d.defaultScratch
	}
	if d.scratch, err = newScratch(m.Source, name); err != nil {
		return fmt.Errorf("drill scratch database: %w", err)
	}
	d.rep.Target = d.scratch.String()
	exists, err := d.scratch.Exists(ctx)
	if err != nil {
		return fmt.Errorf("drill scratch %s: %w", d.scratch, err)
	}
	if exists {
		return fmt.Errorf("drill scratch %s already exists: refused, and left untouched (drop it by hand if it is a leftover of an earlier drill run with --keep)", d.scratch)
	}
	return nil
}

// restore streams the payload into the scratch database.
func (d *run) restore(ctx context.Context) error {
	loader := d.scratch.Loader()
	if err := loader.Prepare(ctx); err != nil {
		return fmt.Errorf("drill scratch %s: %w", d.scratch, err)
	}
	d.created = true
	if pl, ok := loader.(snapshot.ParallelLoader); ok {
		par := d.Parallel
		par.Head = d.m.ArchiveHead()
		pl.SetParallel(par, d.m.Plain.Bytes, d.m.TableCount())
	}
	n, err := restore.Load(ctx, d.From, d.m, d.Identities, loader)
	if r, ok := loader.(snapshot.Reporter); ok {
		lr := r.LoadReport()
		d.rep.Load = &lr
		if lr.Fallback != "" {
			d.Log.Info("drill restores in one stream", zap.String("why", lr.Fallback))
		}
	}
	d.rep.PlainBytes = n
	if err != nil {
		return fmt.Errorf("drill restore of %s/%s from %s into %s: %w", d.Job.Name, d.m.ID, d.From.Name, d.scratch, err)
	}
	return nil
}

// validate compares row counts with the manifest and runs the user checks.
func (d *run) validate(ctx context.Context) error {
	var problems []string
	if d.m.Tables == nil {
		d.Log.Warn("backup has no row counts (made before Coffer recorded them, or an exec source): only the user checks validate it")
	} else {
		got, err := d.scratch.Tables(ctx)
		if err != nil {
			return fmt.Errorf("count rows in %s: %w", d.scratch, err)
		}
		d.rep.Tables = CompareTables(d.m.Tables.Counts, got.Counts)
		for _, t := range d.rep.Tables {
			if !t.OK {
				problems = append(problems, t.String())
			}
		}
	}
	for _, c := range d.Job.Drill.Checks {
		run := CheckRun{Name: c.Name, Query: c.Query, Expect: c.Expect}
		exp, err := config.ParseExpectation(c.Expect)
		if err == nil {
			run.Got, err = d.scratch.Query(ctx, c.Query)
		}
		switch {
		case err != nil:
			run.Error = err.Error()
			problems = append(problems, fmt.Sprintf("check %q: %v", c.Name, err))
		case !exp.Match(run.Got):
			problems = append(problems, fmt.Sprintf("check %q: got %q, want %s", c.Name, run.Got, exp))
		default:
			run.OK = true
		}
		d.rep.Checks = append(d.rep.Checks, run)
	}
	if len(problems) > 0 {
		return fmt.Errorf("restored data of %s/%s does not match: %s", d.Job.Name, d.m.ID, strings.Join(problems, "; "))
	}
	return nil
}

// cleanup drops the scratch database this drill created, unless kept.
func (d *run) cleanup(ctx context.Context) error {
	if !d.created {
		return nil
	}
	if d.Keep {
		d.rep.Kept = true
		d.Log.Warn("scratch database kept for debugging (--keep): drop it when done", zap.String("scratch", d.scratch.String()))
		return nil
	}
	progress.FromContext(ctx).Start(progress.Phase{Name: "drop the scratch database"})
	if err := d.scratch.Drop(ctx); err != nil {
		return fmt.Errorf("drop drill scratch %s: %w", d.scratch, err)
	}
	return nil
}

// finish fills in the totals and the verdict.
func (d *run) finish(err error) *Report {
	r := d.rep
	if r == nil {
		return nil
	}
	r.Finished = d.Now().UTC()
	r.TotalSeconds = r.Finished.Sub(r.Started).Seconds()
	if r.RTOSeconds > 0 {
		r.RTORatio = r.TotalSeconds / r.RTOSeconds
	}
	if s := r.Phase(PhaseLoad).Seconds(); s > 0 && r.PlainBytes > 0 {
		r.Throughput = float64(r.PlainBytes) / s
	}
	r.HeadroomBytes = headroom(r)
	r.Result = Passed
	switch {
	case err != nil:
		r.Result, r.Error = Failed, err.Error()
	case r.RTOSeconds > 0 && r.TotalSeconds > r.RTOSeconds:
		r.Result = Failed
		r.Error = fmt.Sprintf("drill took %s, longer than the RTO of %s", human.Seconds(r.TotalSeconds), human.Seconds(r.RTOSeconds))
	case r.WarnRatio > 0 && r.RTORatio > r.WarnRatio:
		r.Warning = fmt.Sprintf("drill took %s, %.0f%% of the RTO of %s (warning above %.0f%%)", human.Seconds(r.TotalSeconds), 100*r.RTORatio, human.Seconds(r.RTOSeconds), 100*r.WarnRatio)
	}
	log := d.Log.With(zap.String("result", string(r.Result)), zap.Float64("total_seconds", r.TotalSeconds), zap.Float64("rto_ratio", r.RTORatio))
	if r.Result == Passed {
		log.Info("drill finished", zap.Int64("headroom_bytes", r.HeadroomBytes))
	} else {
		log.Error("drill failed", zap.String("error", r.Error))
	}
	return r
}

// headroom is how large the dump could grow before a recovery at the
// measured load throughput would overrun the RTO, the other phases
// taking as long as they did.
func headroom(r *Report) int64 {
	if r.Throughput <= 0 || r.RTOSeconds <= 0 {
		return 0
	}
	budget := r.RTOSeconds - (r.TotalSeconds - r.Phase(PhaseLoad).Seconds())
	if budget <= 0 {
		return 0
	}
	b := r.Throughput * budget
	if b > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return int64(b)
}

// CompareTables matches the restored tables against the counts recorded
// at backup time. A table missing from the restore has Got -1; a restored
// table the backup did not record has Want -1. The result is sorted by
// name.
func CompareTables(want, got []dumpinfo.TableRows) []TableCheck {
	gotBy := make(map[string]int64, len(got))
	for _, t := range got {
		gotBy[t.Name] = t.Rows
	}
	var out []TableCheck
	seen := map[string]bool{}
	for _, w := range want {
		g, ok := gotBy[w.Name]
		if !ok {
			g = -1
		}
		out = append(out, TableCheck{Name: w.Name, Want: w.Rows, Got: g, OK: ok && g == w.Rows})
		seen[w.Name] = true
	}
	for _, g := range got {
		if !seen[g.Name] {
			out = append(out, TableCheck{Name: g.Name, Want: -1, Got: g.Rows})
		}
	}
	sortChecks(out)
	return out
}

// String describes a table check for messages.
func (t TableCheck) String() string {
	switch {
	case t.Got < 0:
		return fmt.Sprintf("table %s is missing (backup recorded %d rows)", t.Name, t.Want)
	case t.Want < 0:
		return fmt.Sprintf("table %s (%d rows) is not in the backup's record", t.Name, t.Got)
	case !t.OK:
		return fmt.Sprintf("table %s has %d rows, the backup recorded %d", t.Name, t.Got, t.Want)
	}
	return fmt.Sprintf("table %s: %d rows", t.Name, t.Got)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]`)

// scratchName is the scratch database's name for this drill:
// coffer_drill_<job>_<backup id>, at most 63 characters, refused when it
// collides with a database the configuration names.
func (d *run) scratchName(info dumpinfo.Info) (string, error) {
	id := unsafeName.ReplaceAllString(strings.ToLower(d.m.ID), "")
	job := unsafeName.ReplaceAllString(strings.ReplaceAll(d.Job.Name, "-", "_"), "")
	name := "coffer_drill_" + job + "_" + id
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(d.Job.Name))
		keep := 63 - len("coffer_drill_") - len(id) - 1 - 9
		name = "coffer_drill_" + job[:max(keep, 1)] + "_" + hex.EncodeToString(sum[:4]) + "_" + id
	}
	if info.Kind == "sqlite" {
		dir := d.Job.Drill.Target.Dir
		if dir == "" {
			dir = os.TempDir()
		}
		name = filepath.Join(dir, name+".sqlite")
	}
	if what, ok := productionName(d.Config, name); ok {
		return "", fmt.Errorf("drill scratch name %q is the name of %s in the configuration: refused", name, what)
	}
	return name, nil
}

// productionName reports whether name is a database or file a job of cfg
// backs up.
func productionName(cfg *config.Config, name string) (string, bool) {
	if cfg == nil {
		return "", false
	}
	for _, jn := range cfg.JobOrder {
		s := cfg.Jobs[jn].Source
		if (s.Database != "" && strings.EqualFold(s.Database, name)) || (s.Path != "" && filepath.Clean(s.Path) == filepath.Clean(name)) {
			return "job " + jn + "'s database", true
		}
	}
	return "", false
}

// defaultScratch builds the scratch database on the job's drill target.
func (d *run) defaultScratch(info dumpinfo.Info, name string) (snapshot.Scratch, error) {
	t := d.Job.Drill.Target
	server := config.Source{Type: d.Job.Source.Type, Host: t.Host, Port: t.Port, User: t.User, Password: t.Password}
	return snapshot.NewScratch(info, server, name)
}

// Percent formats a ratio (of the RTO) as a percentage, never rounding a
// non-zero ratio down to "0.0%".
func Percent(ratio float64) string {
	if ratio > 0 && ratio < 0.001 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", 100*ratio)
}
