package audit

import (
	"encoding/json"
	"io"
	"time"

	"github.com/coffer-backup/coffer/internal/safecsv"
)

// csvHeader is the first row WriteCSV writes.
var csvHeader = []string{"time", "host", "user", "action", "job", "backup_id", "destination", "outcome", "rule", "detail"}

// WriteCSV writes evs as CSV: a header row (time, host, user, action, job,
// backup_id, destination, outcome, rule, detail), then one row per event
// with its time in RFC 3339, UTC. A cell that a spreadsheet would run as a
// formula (starting with =, +, -, @, tab or carriage return) is prefixed
// with a single quote.
func WriteCSV(w io.Writer, evs []Event) error {
	cw := safecsv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, ev := range evs {
		row := []string{ev.Time.UTC().Format(time.RFC3339), ev.Host, ev.User, ev.Action, ev.Job,
			ev.BackupID, ev.Destination, string(ev.Outcome), ev.Rule, ev.Detail}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// WriteJSON writes evs as one indented JSON array ("[]" when empty),
// followed by a newline.
func WriteJSON(w io.Writer, evs []Event) error {
	if evs == nil {
		evs = []Event{}
	}
	b, err := json.MarshalIndent(evs, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
