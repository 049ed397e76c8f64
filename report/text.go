package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/coffer-backup/coffer/internal/human"
)

// statusWord is how a status reads on a screen.
func statusWord(s Status) string { return strings.ToUpper(string(s)) }

// verdict is a report's or job's overall result in words.
func verdict(passed bool) string {
	if passed {
		return "PASSED"
	}
	return "FAILED"
}

// countControls counts the controls of every job of r.
func countControls(r *Report) int {
	n := 0
	for _, j := range r.Jobs {
		n += len(j.Controls)
	}
	return n
}

// WriteText writes r for a person at a terminal: per job, each control
// with its status, summary and evidence, the weekly timeline of every
// destination, the drill history and the configured recipients.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "Coffer compliance report")
	fmt.Fprintf(bw, "Window: %s to %s (%s)\n", stamp(r.From), stamp(r.Generated), r.Since)
	fmt.Fprintf(bw, "Result: %s (%d of %d controls failed)\n", verdict(r.Passed()), r.Failed(), countControls(r))
	if len(r.Jobs) == 0 {
		fmt.Fprintln(bw, "\n(no jobs)")
	}
	for i := range r.Jobs {
		writeTextJob(bw, &r.Jobs[i])
	}
	return bw.Flush()
}

func writeTextJob(w io.Writer, j *JobReport) {
	fmt.Fprintf(w, "\nJob %s: %s (schedule %q, timezone %s)\n", j.Job, verdict(j.Passed()), j.Schedule, j.Timezone)
	fmt.Fprintf(w, "  %s\n", protectedLine(j))
	for _, c := range j.Controls {
		fmt.Fprintf(w, "\n  [%s] %s\n", statusWord(c.Status), c.Title)
		fmt.Fprintf(w, "         %s\n", c.Summary)
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "         - %s\n", e)
		}
	}

	fmt.Fprintf(w, "\n  Weekly timeline (backups present + known only from the audit trail):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"    WEEK", "FROM"}
	for _, c := range j.Coverage {
		header = append(header, strings.ToUpper(c.Destination))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range timelineRows(j) {
		row := []string{"    " + r.Week, r.Start}
		for _, c := range r.Cells {
			row = append(row, weekCell(c))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n  Drills (RTO %s, max age %s):\n", human.Seconds(j.RTOSeconds), j.DrillMaxAge)
	if len(j.Drills) == 0 {
		fmt.Fprintln(w, "    (none)")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "    DRILL\tBACKUP\tFINISHED\tTOOK\tOF RTO\tRESULT")
		for _, d := range j.Drills {
			result := string(d.Result)
			if d.OverRTO {
				result += ", over the RTO"
			}
			if d.ManifestVerified == nil || !*d.ManifestVerified {
				result += ", manifest signature not verified"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%.0f%%\t%s\n", d.ID, d.Backup, stamp(d.Finished),
				human.Seconds(d.TotalSeconds), 100*d.TotalSeconds/max(d.RTOSeconds, 1), result)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\n  Recipients:")
	for _, rc := range j.Recipients {
		fmt.Fprintf(w, "    %s  %s\n", rc.Fingerprint, rc.Key)
	}
	if len(j.Recipients) == 0 {
		fmt.Fprintln(w, "    (none configured)")
	}
}

// weekCell describes one week of one destination in the text timeline.
func weekCell(w Week) string {
	switch w.Status {
	case WeekMissing:
		return "MISSING"
	case WeekUnproven:
		return "UNPROVEN (audit trail)"
	case WeekPending:
		return "pending"
	case WeekNotYetProtected:
		return "not yet protected"
	}
	var parts []string
	if w.Present > 0 {
		parts = append(parts, fmt.Sprintf("%d present", w.Present))
	}
	if w.Audited > 0 {
		parts = append(parts, fmt.Sprintf("%d audited", w.Audited))
	}
	return strings.Join(parts, " + ")
}

// protectedLine says when the job's protection began, e.g. "Protected
// since 2026-11-30 (first backup)".
func protectedLine(j *JobReport) string {
	if j.ProtectedSince == "" {
		return "Not protected yet: no backup or audit event of it is known"
	}
	return fmt.Sprintf("Protected since %s (%s)", j.ProtectedSince, j.ProtectedSinceSource)
}
