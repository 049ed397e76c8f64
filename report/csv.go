package report

import (
	"io"

	"github.com/coffer-backup/coffer/internal/safecsv"
)

// csvHeader is the first row WriteCSV writes.
var csvHeader = []string{"job", "control", "title", "status", "summary", "evidence"}

// WriteCSV writes r as CSV: a header row (job, control, title, status,
// summary, evidence), then one row per evidence line of each control (one
// row with empty evidence for a control that has none). A cell that a
// spreadsheet would run as a formula (starting with =, +, -, @, tab or
// carriage return) is prefixed with a single quote.
func WriteCSV(w io.Writer, r *Report) error {
	cw := safecsv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, j := range r.Jobs {
		for _, c := range j.Controls {
			evidence := c.Evidence
			if len(evidence) == 0 {
				evidence = []string{""}
			}
			for _, e := range evidence {
				row := []string{j.Job, c.ID, c.Title, string(c.Status), c.Summary, e}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
	}
	return cw.Flush()
}
