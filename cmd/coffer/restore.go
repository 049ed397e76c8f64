package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
)

type restoreFlags struct {
	identityFlags
	job, id, from, target, output        string
	latest, force, asJSON, skipSignature bool
	jobs                                 int
	spoolDir                             string
}

func newRestoreCmd(g *globals) *cobra.Command {
	f := &restoreFlags{}
	cmd := &cobra.Command{
		Use:   "restore --job NAME [--id ID | --latest] --identity FILE (--target DB | -o FILE | -o -)",
		Short: "Restore a backup into a database, a file or stdout",
		Long: `Restore the newest backup of a job (or --id) and check it while streaming:
age authentication, zstd framing, and SHA-256 and sizes against the
manifest. The newest is the newest backup whose manifest verifies and whose
payload is whole somewhere: a planted or forged manifest key is never
chosen, and each key not used is named on stderr (--json: "untrusted").
When the first destination is unreachable or its copy is bad, the next
destination holding the backup is used and named.

Where it goes:
  --target NAME   a database (PostgreSQL/MariaDB: a database name on the job's
                  server, or a postgres:// / mysql:// URL; SQLite: a file path).
                  It must not exist or be empty, unless --force.
  --force         replace a non-empty target, never before a copy's manifest
                  signature, payload size, age header and identity checked out.
                  PostgreSQL: loaded into <target>__coffer_restore_<random> and
                  swapped in by renaming only after every check passed; on any
                  failure the target is untouched. SQLite: a temporary file
                  renamed over the target at the end. MariaDB/MySQL (no
                  database rename): dropped after those checks, so damage
                  found later in the payload leaves it empty or partly loaded.
  -o FILE         the plain dump, written to FILE (temp name, then renamed).
  -o -            the plain dump on stdout.

Each manifest's signature is checked against signing.public_keys; a copy
whose manifest fails is not used, and named.
--insecure-skip-signature reads such manifests anyway, with a warning for
each: for emergencies only (e.g. backups made before Coffer signed them).
Restoring the newest backup also records its sequence number and warns
when it is older than a backup seen before (a possible rollback).

Parallel restore: a PostgreSQL custom-format backup (the default format)
is written to a spool file in restore.spool_dir (default $TMPDIR or /tmp),
checked whole (SHA-256 and sizes) before the database is touched, then
restored by pg_restore with --jobs workers (restore.jobs, default one per
CPU up to 8): schema, then the tables side by side, then the indexes and
constraints side by side. The spool file is removed at the end, also on
failure or SIGTERM. When the spool does not fit (the manifest's plain size
and 5% plus 256 MiB), or with --jobs 1, the dump streams into one
pg_restore as before, and the reason is logged. Plain-format PostgreSQL,
MariaDB and SQLite backups always stream.

Progress goes to stderr: on a terminal one line per phase (bytes of the
manifest's size, rate, time left, the destination serving it; pg_restore's
tables and indexes done of the archive's totals), redrawn in place; off a
terminal or with --json a "restore progress" log line every 30 s.

Without Coffer: age -d -i key.txt payload.*.zst.age | zstd -d > dump
(see the README's restore runbook).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRestore(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.job, "job", "j", "", "job to restore (required)")
	fl.StringVar(&f.id, "id", "", "backup id")
	fl.BoolVar(&f.latest, "latest", false, "the newest complete backup (the default when --id is not given)")
	fl.StringVar(&f.from, "from", "", "destination to try first (default: the job's order)")
	f.identityFlags.register(cmd, identityHelp, passphraseHelp)
	fl.StringVarP(&f.target, "target", "t", "", "database (or SQLite file) to restore into")
	fl.StringVarP(&f.output, "output", "o", "", `write the plain dump to FILE, or "-" for stdout`)
	fl.BoolVar(&f.force, "force", false, "restore into a target that is not empty")
	fl.BoolVar(&f.asJSON, "json", false, "print the restore report as JSON on stdout (not with -o -)")
	fl.IntVar(&f.jobs, "jobs", 0, "pg_restore workers for a PostgreSQL custom-format backup (default restore.jobs; 1 streams without a spool file)")
	fl.StringVar(&f.spoolDir, "spool-dir", "", "directory for the parallel restore's spool file (default restore.spool_dir)")
	skipSignatureFlag(cmd, &f.skipSignature)
	return cmd
}

func runRestore(cmd *cobra.Command, g *globals, f *restoreFlags) error {
	switch {
	case f.id != "" && f.latest:
		return usageErr(errors.New("give --id or --latest, not both"))
	case (f.target == "") == (f.output == ""):
		return usageErr(errors.New("give exactly one of --target DB or -o FILE (-o - for stdout)"))
	case f.output == "-" && f.asJSON:
		return usageErr(errors.New("--json cannot share stdout with -o -"))
	}
	cfg, jobs, err := g.loadJobs(f.job, false)
	if err != nil {
		return err
	}
	ids, err := f.load(true)
	if err != nil {
		return err
	}
	stores, err := openStores(cmd.Context(), cfg, jobs[0], f.from)
	if err != nil {
		return err
	}
	log := g.logger()
	defer log.Sync()
	trust, err := readTrust(cfg, f.skipSignature, log)
	if err != nil {
		return err
	}
	par, err := parallelFlags(cfg, f.jobs, f.spoolDir)
	if err != nil {
		return err
	}
	req := restore.Request{Job: f.job, ID: f.id, Destinations: stores, Identities: ids, Trust: trust, Parallel: par}
	ctx, stopProgress := g.startProgress(cmd.Context(), log.With(zap.String("job", f.job)), "restore", f.asJSON)
	rep, err := restore.Run(ctx, req, func(info dumpinfo.Info) (snapshot.Loader, error) {
		return newLoader(f, jobs[0].Source, info)
	}, log)
	stopProgress()
	ev := audit.Event{Action: audit.ActionRestore, Job: f.job, Outcome: audit.OutcomeOK}
	if rep != nil {
		ev.BackupID, ev.Destination = rep.ID, rep.ServedBy
		ev.Detail = "into " + rep.Target
	}
	if err != nil {
		ev.Outcome, ev.Detail = audit.OutcomeFailed, err.Error()
	}
	auditBestEffort(cfg, log, ev)
	// Say what was not used, so that nobody wonders whether a planted or
	// forged key was restored.
	notUsed := ""
	if rep != nil {
		for _, u := range rep.Untrusted {
			notUsed += fmt.Sprintf("not used (not trusted): %s\n", u)
		}
		for _, in := range rep.Incomplete {
			notUsed += fmt.Sprintf("not used (incomplete): backup %s on %s: %s\n", in.ID, in.Destination, in.Reason)
		}
	}
	if err != nil {
		fmt.Fprint(cmd.ErrOrStderr(), notUsed)
		return signatureHint(err)
	}
	if m := rep.Manifest; f.id == "" && m != nil {
		if w := observeNewest(cfg, jobs[0], stores, verifiedMark(m.ID, m.Sequence, m.SignedBy), log); w != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
		}
	}
	if f.asJSON {
		fmt.Fprint(cmd.ErrOrStderr(), notUsed)
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	msg := fmt.Sprintf("restored %s/%s (%s) into %s from %s in %s\n", rep.Job, rep.ID, humanBytes(rep.PlainBytes), rep.Target, rep.ServedBy, human.Duration(rep.Duration))
	msg += loadSteps(rep.Load)
	if len(rep.Attempts) > 1 {
		msg += fmt.Sprintf("note: %d destination(s) failed first: %s\n", len(rep.Attempts)-1, rep.Attempts[0].Error)
	}
	msg += notUsed
	if f.output == "-" {
		fmt.Fprint(cmd.ErrOrStderr(), msg)
	} else {
		fmt.Fprint(cmd.OutOrStdout(), msg)
	}
	return nil
}

// newLoader picks where the restored dump goes.
func newLoader(f *restoreFlags, conn config.Source, info dumpinfo.Info) (snapshot.Loader, error) {
	switch {
	case f.output == "-":
		return restore.WriterLoader(os.Stdout, "stdout"), nil
	case f.output != "":
		return restore.FileLoader(f.output, f.force), nil
	}
	return snapshot.NewLoader(info, conn, f.target, f.force)
}

// parallelFlags is the parallel restore asked for: --jobs and --spool-dir
// over restore.jobs and restore.spool_dir.
func parallelFlags(cfg *config.Config, jobs int, spoolDir string) (snapshot.Parallel, error) {
	par := snapshot.Parallel{Jobs: cfg.Restore.Jobs, SpoolDir: cfg.Restore.SpoolDir}
	if jobs < 0 || jobs > 64 {
		return par, usageErr(fmt.Errorf("--jobs %d: want 1 to 64 pg_restore workers", jobs))
	}
	if jobs > 0 {
		par.Jobs = jobs
	}
	if spoolDir != "" {
		par.SpoolDir = spoolDir
	}
	return par, nil
}

// loadSteps says how a restore loaded its data: the workers, each timed
// step, and why a parallel restore was not done.
func loadSteps(l snapshot.LoadReport) string {
	s := ""
	if l.Fallback != "" {
		s += "streamed (no parallel restore): " + l.Fallback + "\n"
	}
	for _, st := range l.Steps {
		s += fmt.Sprintf("  %-44s %s\n", st.Name, human.Seconds(st.Seconds))
	}
	switch {
	case l.Jobs > 1 && l.DataOffsets > 0:
		s += fmt.Sprintf("  (%d pg_restore workers; the spool's data offsets filled in for %d entries, so workers seek to their tables)\n", l.Jobs, l.DataOffsets)
	case l.Jobs > 1:
		s += fmt.Sprintf("  (%d pg_restore workers; the spool's data offsets unknown, so workers read their way to their tables)\n", l.Jobs)
	}
	if l.TablesDuringSpool > 0 {
		s += fmt.Sprintf("  (the schema and %d tables loaded while the spool was still being written)\n", l.TablesDuringSpool)
	}
	return s
}
