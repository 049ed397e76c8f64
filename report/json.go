package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes r as one indented JSON object followed by a newline:
// the Report's fields, plus "passed" on the report and on each job. The
// schema only grows: fields are added, never renamed or removed.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
