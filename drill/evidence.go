package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/storage"
)

// ReportFormatVersion is the drill report format this code writes and the
// newest it reads.
const ReportFormatVersion = 1

// Result is how a drill ended. The words are stored in every drill report
// and read back by the compliance report: a value is never renamed.
type Result string

// Results of a drill.
const (
	Passed Result = "passed"
	Failed Result = "failed"
)

// Phase names, in the order a drill runs them.
const (
	PhaseLocate   = "locate"   // list the source, fetch and check the manifest
	PhaseLoad     = "load"     // transfer, decrypt, decompress and load
	PhaseValidate = "validate" // row counts and user checks
	PhaseCleanup  = "cleanup"  // drop the scratch database
)

// Report is a drill's evidence, stored as JSON under
// _coffer/drills/<job>/<drill-id>.json in the drill's source destination.
type Report struct {
	FormatVersion int    `json:"format_version"`
	ID            string `json:"id"` // same shape as a backup id
	Job           string `json:"job"`
	Backup        string `json:"backup,omitempty"` // the backup id restored
	From          string `json:"from"`             // source destination
	Target        string `json:"target,omitempty"` // scratch database, without secrets
	Host          string `json:"host,omitempty"`
	CofferVersion string `json:"coffer_version"`

	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Phases   []Phase   `json:"phases"`
	// Load says how the load phase ran: pg_restore workers, its timed
	// steps (download and spool, schema, data, indexes and constraints),
	// and why a parallel restore was not done.
	Load *snapshot.LoadReport `json:"load,omitempty"`
	// TotalSeconds is the whole drill, the figure compared with the RTO.
	TotalSeconds float64 `json:"total_seconds"`
	RTOSeconds   float64 `json:"rto_seconds"`
	// RTORatio is TotalSeconds / RTOSeconds.
	RTORatio float64 `json:"rto_ratio"`
	// WarnRatio is the fraction of the RTO above which the drill warns.
	WarnRatio float64 `json:"warn_ratio"`

	PayloadBytes int64 `json:"payload_bytes"`
	PlainBytes   int64 `json:"plain_bytes"`
	// Throughput is plaintext bytes per second in the load phase.
	Throughput float64 `json:"throughput_bytes_per_second"`
	// HeadroomBytes is how large the dump could grow, at the measured
	// throughput, before a recovery would take longer than the RTO.
	HeadroomBytes int64 `json:"headroom_bytes"`

	// ManifestVerified says whether the restored backup's manifest
	// signature was verified against a trusted key. It is false when the
	// drill read the manifest with --insecure-skip-signature and its
	// signature was missing or failed (or no key was trusted), and nil in
	// evidence written before Coffer recorded it: such evidence cannot
	// show the signature was checked. The compliance report accepts a
	// drill as evidence only when this is true.
	ManifestVerified *bool `json:"manifest_verified"`
	// ManifestSignedBy is the id of the key whose signature on the
	// manifest verified (set only when ManifestVerified is true).
	ManifestSignedBy string `json:"manifest_signed_by,omitempty"`

	Tables      []TableCheck `json:"tables,omitempty"`
	CountsExact bool         `json:"counts_exact"`
	Checks      []CheckRun   `json:"checks,omitempty"`

	Result Result `json:"result"` // Passed or Failed
	// Warning is set when a passed drill took longer than WarnRatio of
	// the RTO.
	Warning string `json:"warning,omitempty"`
	Error   string `json:"error,omitempty"`
	// Kept is true when the scratch database was left for debugging.
	Kept bool `json:"kept,omitempty"`
}

// Phase is one timed step of a drill.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// TableCheck compares one table's restored row count with the count
// recorded at backup time.
type TableCheck struct {
	Name string `json:"name"`
	Want int64  `json:"want"`
	// Got is -1 when the table is missing from the restored database.
	Got int64 `json:"got"`
	OK  bool  `json:"ok"`
}

// CheckRun is one user check and its outcome.
type CheckRun struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Expect string `json:"expect"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// Passed reports whether the drill passed.
func (r *Report) Passed() bool { return r.Result == Passed }

// Unproven says why r is no evidence that a verified backup restores, or
// returns "" when its manifest's signature was verified. A drill that
// skipped verification restored data anyone with write access to the
// bucket could have planted; evidence written before Coffer recorded
// verification cannot show either way.
func (r *Report) Unproven() string {
	switch {
	case r.ManifestVerified == nil:
		return "the evidence does not record whether the backup's manifest signature was verified (written by an older Coffer): run a new drill to replace it"
	case !*r.ManifestVerified:
		return "the backup's manifest signature was not verified (drill run with --insecure-skip-signature, or no trusted signing key): not evidence of a restorable backup"
	}
	return ""
}

// Total is the drill's duration.
func (r *Report) Total() time.Duration { return seconds(r.TotalSeconds) }

// Phase returns the named phase's duration (zero when it did not run).
func (r *Report) Phase(name string) time.Duration {
	for _, p := range r.Phases {
		if p.Name == name {
			return seconds(p.Seconds)
		}
	}
	return 0
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ReportKey is a drill report's key: "_coffer/drills/<job>/<drill-id>.json"
// (layout.DrillReport).
func ReportKey(job, id string) string { return layout.DrillReport(job, id) }

// maxReportSize bounds how much of a report object is read.
const maxReportSize = 4 << 20

// Encode returns the report as indented JSON.
func (r *Report) Encode() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// DecodeReport parses a drill report, refusing unknown format versions
// and reports that do not name a job, an id and a result.
func DecodeReport(data []byte) (*Report, error) {
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("drill report is %d bytes, more than the %d allowed", len(data), maxReportSize)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("drill report is not valid JSON: %w", err)
	}
	switch {
	case r.FormatVersion < 1 || r.FormatVersion > ReportFormatVersion:
		return nil, fmt.Errorf("drill report format_version %d is not supported (this Coffer reads 1..%d)", r.FormatVersion, ReportFormatVersion)
	case !manifest.ValidID(r.ID):
		return nil, fmt.Errorf("drill report id %q is not a drill id", r.ID)
	case r.Job == "":
		return nil, fmt.Errorf("drill report %s names no job", r.ID)
	case r.Result != Passed && r.Result != Failed:
		return nil, fmt.Errorf("drill report %s: result %q is neither passed nor failed", r.ID, r.Result)
	}
	return &r, nil
}

// envelope is a signed drill report as stored: the signature covers the
// exact bytes of DrillReport.
type envelope struct {
	DrillReport json.RawMessage `json:"drill_report"`
	Signature   sign.Signature  `json:"signature"`
}

// WriteReport stores r in s, create-only, signed by signer (nil stores it
// unsigned, which readers refuse unless told to skip signatures).
func WriteReport(ctx context.Context, s storage.Store, r *Report, signer *sign.Signer) error {
	data, err := encodeStored(r, signer)
	if err != nil {
		return err
	}
	key := ReportKey(r.Job, r.ID)
	if _, err := storage.Create(ctx, s, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("write drill report %s to %s: %w", key, s, err)
	}
	return nil
}

// encodeStored returns the object stored for r: its indented JSON, or,
// with a signer, an envelope around its compact JSON and the signature of
// exactly those bytes (an indenting encoder would re-indent them).
func encodeStored(r *Report, signer *sign.Signer) ([]byte, error) {
	if signer == nil {
		return r.Encode()
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{DrillReport: data, Signature: signer.Sign(data)})
}

// openReport checks a stored report's signature under trust and decodes
// it; object names it for messages.
func openReport(data []byte, trust manifest.Trust, object string) (*Report, error) {
	var env envelope
	signed := json.Unmarshal(data, &env) == nil && len(env.DrillReport) > 0
	var sigErr error
	switch {
	case signed:
		if err := trust.Verifier.Verify(env.DrillReport, env.Signature); err != nil {
			sigErr = fmt.Errorf("signature: %w", err)
		}
		data = env.DrillReport
	default:
		sigErr = errors.New("not signed")
	}
	if sigErr != nil && !trust.SkipSignature {
		return nil, sigErr
	}
	r, err := DecodeReport(data)
	if err != nil {
		return nil, err // reported as unreadable, not also as unverified
	}
	if sigErr != nil && trust.Warn != nil {
		trust.Warn(object, sigErr)
	}
	return r, nil
}

// ReadReports returns job's drill reports on s, oldest first, each checked
// against trust's signing keys. A report that cannot be read, decoded or
// verified is returned as an error in bad (keyed by object key) and left
// out; an unreachable store is an error.
func ReadReports(ctx context.Context, s storage.Store, job string, trust manifest.Trust) (reports []*Report, bad map[string]error, err error) {
	keys, err := reportKeys(ctx, s, job)
	if err != nil {
		return nil, nil, err
	}
	bad = map[string]error{}
	for _, key := range keys {
		r, err := readReport(ctx, s, job, key, trust)
		if err != nil {
			bad[key] = err
			continue
		}
		reports = append(reports, r)
	}
	return reports, bad, nil
}

// LatestReport returns job's newest drill report on s that reads and
// verifies under trust, or nil when there is none. Older reports are read
// only while newer ones fail.
func LatestReport(ctx context.Context, s storage.Store, job string, trust manifest.Trust) (*Report, error) {
	keys, err := reportKeys(ctx, s, job)
	if err != nil {
		return nil, err
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if r, err := readReport(ctx, s, job, keys[i], trust); err == nil {
			return r, nil
		}
	}
	return nil, nil
}

// reportKeys lists job's drill report keys on s, oldest first (drill ids
// sort by time).
func reportKeys(ctx context.Context, s storage.Store, job string) ([]string, error) {
	var keys []string
	for obj, err := range s.List(ctx, layout.DrillReports(job)) {
		if err != nil {
			return nil, fmt.Errorf("list drill reports of %s on %s: %w", job, s, err)
		}
		if strings.HasSuffix(obj.Key, ".json") {
			keys = append(keys, obj.Key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// readReport reads, verifies and decodes the report at key, which must
// describe a drill of job under that very key.
func readReport(ctx context.Context, s storage.Store, job, key string, trust manifest.Trust) (*Report, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxReportSize+1))
	if err != nil {
		return nil, err
	}
	r, err := openReport(data, trust, key+" on "+s.String())
	if err == nil && (r.Job != job || ReportKey(r.Job, r.ID) != key) {
		return nil, fmt.Errorf("describes drill %s/%s, not the one its key names", r.Job, r.ID)
	}
	return r, err
}

func sortChecks(cs []TableCheck) {
	slices.SortFunc(cs, func(a, b TableCheck) int { return strings.Compare(a.Name, b.Name) })
}
