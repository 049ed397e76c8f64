package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/daemon"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/notify"
)

type drillFlags struct {
	identityFlags
	job, from, id               string
	keep, asJSON, skipSignature bool
	jobs                        int
	spoolDir                    string
}

func newDrillCmd(g *globals) *cobra.Command {
	f := &drillFlags{}
	cmd := &cobra.Command{
		Use:   "drill --job NAME [--from DEST] [--id ID] [--identity FILE]",
		Short: "Restore a backup into a scratch database, check it and time it against the RTO",
		Long: `Run a restore drill: the disaster path, for real and timed.

The newest complete backup on the drill's source destination (drill.from,
by default the job's last destination: the offsite copy a disaster leaves;
--from primary to choose) is streamed, decrypted and decompressed into a
fresh scratch database named coffer_drill_<job>_<backup id> on the drill
target (drill.target, by default the source's server; SQLite: a file in
drill.target.dir). Every table's row count is compared with the counts
recorded at backup time, and the job's drill.checks run. The scratch
database is dropped afterwards, also on failure (--keep leaves it).

A drill never falls back to another destination: an unreachable source
fails the drill. Each phase is timed; the total is compared with the job's
RTO, and the report says how large the database could grow before a
recovery would overrun it. The report is stored under
_coffer/drills/<job>/ in the source destination and in the state
directory; an audit event is recorded and failures are notified.

The evidence records whether the backup's manifest signature was verified
(and by which key). With --insecure-skip-signature a manifest whose
signature is missing or fails is read anyway; such a drill is recorded as
unverified and the compliance report fails it.

Progress goes to stderr: on a terminal one line per phase, redrawn in
place; off a terminal or with --json a "drill progress" log line every
30 s.

Exit status: 0 passed, 1 failed, 2 usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrill(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.job, "job", "j", "", "job to drill (required)")
	fl.StringVar(&f.from, "from", "", "destination to drill from (default: the job's drill.from)")
	fl.StringVar(&f.id, "id", "", "backup id (default: the newest on the source destination)")
	f.identityFlags.register(cmd, "age identity file (default: drill.identity_file, then env COFFER_IDENTITY)",
		"file (mode 0600) holding the identity's passphrase (default: drill.passphrase_file for drill.identity_file, then env COFFER_PASSPHRASE_FILE, then the terminal)")
	fl.BoolVar(&f.keep, "keep", false, "leave the scratch database in place for debugging")
	fl.BoolVar(&f.asJSON, "json", false, "print the drill report as JSON")
	fl.IntVar(&f.jobs, "jobs", 0, "pg_restore workers for a PostgreSQL custom-format backup (default restore.jobs; 1 streams without a spool file)")
	fl.StringVar(&f.spoolDir, "spool-dir", "", "directory for the parallel restore's spool file (default restore.spool_dir)")
	skipSignatureFlag(cmd, &f.skipSignature)
	return cmd
}

func runDrill(cmd *cobra.Command, g *globals, f *drillFlags) error {
	cfg, jobs, err := g.loadJobs(f.job, false)
	if err != nil {
		return err
	}
	job := jobs[0]
	par, err := parallelFlags(cfg, f.jobs, f.spoolDir)
	if err != nil {
		return err
	}
	req := daemon.DrillRequest{From: f.from, ID: f.id, Keep: f.keep, Parallel: &par}
	// --identity, else drill.identity_file (with --passphrase-file, else
	// drill.passphrase_file), else $COFFER_IDENTITY; a protected file with
	// no passphrase file is asked for on the terminal.
	if req.Identities, err = f.or(job.Drill.IdentityFile, job.Drill.PassphraseFile).load(true); err != nil {
		return err
	}
	log := g.logger()
	defer log.Sync()
	trust, err := readTrust(cfg, f.skipSignature, log)
	if err != nil {
		return err
	}
	req.Trust = &trust
	runner := &daemon.Runner{Log: log, Audit: openAuditBestEffort(cfg, log), Version: version}
	if runner.Audit != nil {
		defer runner.Audit.Close()
	}
	if dir, err := cfg.StateDir(); err == nil {
		runner.DrillDir = filepath.Join(dir, "drills")
	}
	runner.SetNotifier(notify.New(cfg.Notify, log, notify.WithVersion(version)))
	ctx, stopProgress := g.startProgress(cmd.Context(), log.With(zap.String("job", job.Name)), "drill", f.asJSON)
	rep, err := runner.DrillNow(ctx, cfg, job, req)
	stopProgress()
	if rep == nil {
		return err
	}
	if f.asJSON {
		if jerr := writeJSON(cmd.OutOrStdout(), rep); jerr != nil {
			return jerr
		}
	} else {
		printDrill(cmd.OutOrStdout(), rep)
	}
	if !rep.Passed() {
		return &exitError{code: exitFailed, err: fmt.Errorf("drill %s of job %s failed: %s", rep.ID, rep.Job, rep.Error)}
	}
	return nil
}

// printDrill writes a drill report for a person.
func printDrill(w io.Writer, r *drill.Report) {
	fmt.Fprintf(w, "drill %s of job %s: %s\n", r.ID, r.Job, r.Result)
	fmt.Fprintf(w, "  backup   %s from %s into %s\n", r.Backup, r.From, r.Target)
	switch {
	case r.ManifestSignedBy != "":
		fmt.Fprintf(w, "  manifest signature verified (key %s)\n", r.ManifestSignedBy)
	case r.Backup != "":
		fmt.Fprintf(w, "  manifest signature NOT verified: the compliance report will fail this drill\n")
	}
	for _, p := range r.Phases {
		line := fmt.Sprintf("  %-9s%10s", p.Name, human.Seconds(p.Seconds))
		if p.Name == drill.PhaseLoad && r.Throughput > 0 {
			line += fmt.Sprintf("   %s payload, %s plain, %s/s", humanBytes(r.PayloadBytes), humanBytes(r.PlainBytes), humanBytes(int64(r.Throughput)))
		}
		if p.Error != "" {
			line += "   error: " + p.Error
		}
		fmt.Fprintln(w, line)
		if p.Name == drill.PhaseLoad && r.Load != nil {
			fmt.Fprint(w, indent(loadSteps(*r.Load), "  "))
		}
	}
	fmt.Fprintf(w, "  total    %10s   %s of the RTO (%s)\n", human.Seconds(r.TotalSeconds), drill.Percent(r.RTORatio), human.Seconds(r.RTOSeconds))
	if r.HeadroomBytes > 0 {
		fmt.Fprintf(w, "  headroom at this throughput the dump could grow to %s before a recovery overran the RTO\n", humanBytes(r.HeadroomBytes))
	}
	bad := 0
	for _, t := range r.Tables {
		if !t.OK {
			bad++
			fmt.Fprintf(w, "  MISMATCH %s\n", t)
		}
	}
	if len(r.Tables) > 0 {
		exact := "exact, from the backup itself"
		if !r.CountsExact {
			exact = "approximate"
		}
		fmt.Fprintf(w, "  tables   %d checked, %d differ (counts %s)\n", len(r.Tables), bad, exact)
	}
	for _, c := range r.Checks {
		status := "ok"
		if !c.OK {
			status = "FAILED"
		}
		fmt.Fprintf(w, "  check    %s: got %q, want %s: %s\n", c.Name, c.Got, c.Expect, status)
	}
	if r.Warning != "" {
		fmt.Fprintf(w, "  WARNING  %s\n", r.Warning)
	}
	if r.Kept {
		fmt.Fprintf(w, "  kept     %s (drop it when done)\n", r.Target)
	}
}

// indent puts prefix before every line of s.
func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}
