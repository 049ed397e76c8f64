package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/report"
)

func newReportCmd(g *globals) *cobra.Command {
	var job, since, format, output string
	var skipSignature bool
	cmd := &cobra.Command{
		Use:   "report [--job NAME] [--since 12w] [--format text|json|csv|html] [-o FILE]",
		Short: "Compliance report: weekly backups, retention, encryption and drills, each passed or failed with evidence",
		Long: `Answer a compliance officer's questions for each job over a window
(--since, default 12w), each as a control that passes, warns or fails, with
the evidence:

  weekly-backups  every ISO week has a complete backup in every destination
                  (backups present now, or the audit trail for older weeks);
                  weeks before the job's first backup or audit event (or
                  jobs.NAME.protected_since, if earlier) are not yet
                  protected and not judged
  retention       nothing kept beyond keep_within + grace unless a keep rule
                  or Object Lock holds it; nothing pruned inside keep_within
  encryption      every backup is encrypted to the configured recipients and
                  its manifest (and payload size) checks out
  drill           the last drill is within drill.max_age, passed, and took
                  no longer than the RTO

--format html writes one self-contained page (inline CSS and SVG charts, no
script) to print or archive; csv has one row per control and evidence line;
json is the report as data. See docs/report.md.

Exit codes: 0 every control passed (warnings allowed), 1 a control failed,
2 usage or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := config.ParseDuration(since)
			if err != nil {
				return usageErr(fmt.Errorf("--since: %w", err))
			}
			if window <= 0 {
				return usageErr(fmt.Errorf("--since %s: must be longer than zero", since))
			}
			write, err := reportWriter(format)
			if err != nil {
				return usageErr(err)
			}
			cfg, jobs, err := g.loadJobs(job, job == "")
			if err != nil {
				return err
			}
			auditLog, err := auditFile(cfg)
			if err != nil {
				return err
			}
			log := g.logger()
			defer log.Sync()
			trust, err := readTrust(cfg, skipSignature, log)
			if err != nil {
				return err
			}
			in, err := report.Gather(cmd.Context(), cfg, jobs, report.Options{
				Now:      time.Now(),
				Since:    window.D(),
				AuditLog: auditLog,
				Trust:    trust,
			})
			if err != nil {
				return err
			}
			r := report.Evaluate(in)
			toFile := output != "" && output != "-"
			if toFile {
				err = writeFile(output, func(w io.Writer) error { return write(w, r) })
			} else {
				err = write(cmd.OutOrStdout(), r)
			}
			if err != nil {
				return err
			}
			// One line on stderr either way: a failure is returned (main
			// prints it), never printed here as well.
			where := ""
			if toFile {
				where = fmt.Sprintf(" (the %s report is in %s)", format, output)
			}
			if !r.Passed() {
				return &exitError{code: exitFailed, err: fmt.Errorf("report: %s%s", reportVerdict(r), where)}
			}
			if toFile {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote the %s report to %s: %s\n", format, output, reportVerdict(r))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&job, "job", "j", "", "only this job (default: every job)")
	cmd.Flags().StringVar(&since, "since", "12w", "the window, ending now (e.g. 12w, 90d)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, csv or html")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE (created 0600) instead of standard output")
	skipSignatureFlag(cmd, &skipSignature)
	return cmd
}

// reportWriter returns the writer of a --format.
func reportWriter(format string) (func(io.Writer, *report.Report) error, error) {
	switch format {
	case "text":
		return report.WriteText, nil
	case "json":
		return report.WriteJSON, nil
	case "csv":
		return report.WriteCSV, nil
	case "html":
		return report.WriteHTML, nil
	}
	return nil, fmt.Errorf("--format %q: want text, json, csv or html", format)
}

// reportVerdict sums a report up in a few words.
func reportVerdict(r *report.Report) string {
	if r.Passed() {
		return "every control passed"
	}
	return fmt.Sprintf("%d control(s) failed", r.Failed())
}
