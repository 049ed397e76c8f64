package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/storage"
)

// Keep stores a drill's evidence, signed by signer: in the drill's source
// destination (where the compliance report reads it) and, when localDir is
// set, unsigned as
// <localDir>/<job>/<id>.json (mode 0600), so the evidence of a drill whose
// destination was unreachable is not lost. It returns the bucket error, if
// any, after trying both.
func Keep(ctx context.Context, r *Report, from storage.Destination, localDir string, signer *sign.Signer) error {
	var errs []error
	if localDir != "" {
		if err := saveLocal(r, localDir); err != nil {
			errs = append(errs, err)
		}
	}
	if from.Store != nil {
		if err := WriteReport(ctx, from.Store, r, signer); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func saveLocal(r *Report, dir string) error {
	data, err := r.Encode()
	if err != nil {
		return err
	}
	jobDir := filepath.Join(dir, r.Job)
	if err := os.MkdirAll(jobDir, 0o700); err != nil {
		return fmt.Errorf("drill report: %w", err)
	}
	if err := keyfile.Create(filepath.Join(jobDir, r.ID+".json"), data); err != nil {
		return fmt.Errorf("drill report: %w", err)
	}
	return nil
}

// AuditEvent is the audit trail's record of a drill.
func (r *Report) AuditEvent() audit.Event {
	outcome := audit.OutcomeOK
	if !r.Passed() {
		outcome = audit.OutcomeFailed
	}
	detail := fmt.Sprintf("drill %s: %s in %s (%s of the RTO %s), %d bytes restored into %s",
		r.ID, r.Result, human.Seconds(r.TotalSeconds), Percent(r.RTORatio), human.Seconds(r.RTOSeconds), r.PlainBytes, r.Target)
	if r.Passed() && r.Unproven() != "" {
		detail += " (manifest signature NOT verified)"
	}
	if r.Error != "" {
		detail += ": " + r.Error
	} else if r.Warning != "" {
		detail += ": " + r.Warning
	}
	return audit.Event{Action: audit.ActionDrill, Job: r.Job, BackupID: r.Backup, Destination: r.From, Outcome: outcome, Detail: detail}
}

// PhaseSeconds maps each phase that ran to its duration in seconds.
func (r *Report) PhaseSeconds() map[string]float64 {
	m := make(map[string]float64, len(r.Phases))
	for _, p := range r.Phases {
		m[p.Name] = p.Seconds
	}
	return m
}
