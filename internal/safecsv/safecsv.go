// Package safecsv writes CSV that spreadsheets cannot run: a cell that
// starts with a formula character (= + - @ tab or CR) is prefixed with a
// quote, so a backup id or an error message from a bucket is shown as
// text, never evaluated (CSV injection).
package safecsv

import (
	"encoding/csv"
	"io"
	"strings"
)

// Writer is a csv.Writer that defuses every cell.
type Writer struct{ w *csv.Writer }

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Write writes one record, defusing each cell (row is not modified).
func (w *Writer) Write(row []string) error {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = defuse(c)
	}
	return w.w.Write(out)
}

// Flush writes buffered data and returns the first error of any write.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}

// defuse keeps a spreadsheet from reading cell c as a formula.
func defuse(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}
