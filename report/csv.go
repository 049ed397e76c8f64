package report

import (
	"encoding/csv"
	"io"
	"strings"
)

// csvHeader is the first row WriteCSV writes.
var csvHeader = []string{"job", "control", "title", "status", "summary", "evidence"}

// WriteCSV writes r as CSV: a header row (job, control, title, status,
// summary, evidence), then one row per evidence line of each control (one
// row with empty evidence for a control that has none). A cell that a
// spreadsheet would run as a formula (starting with =, +, -, @, tab or
// carriage return) is prefixed with a single quote.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
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
				for i, cell := range row {
					row[i] = defuse(cell)
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a spreadsheet from reading cell c as a formula.
func defuse(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}
