package config

import (
	"errors"
	"fmt"
	"sort"
)

// A FieldError is one problem in a configuration file. Load and Parse
// return every problem they find, each as a *FieldError, joined with
// errors.Join; FieldErrors takes them apart again.
//
// Msg never contains a secret value: it names variables, files and keys,
// not what they hold.
type FieldError struct {
	// File is the configuration file's name as given to Load or Parse.
	File string `json:"file"`
	// Line is the 1-based line of the key at fault, or 0 when the problem
	// is about the file as a whole (no jobs, for example).
	Line int `json:"line,omitempty"`
	// Field is the dotted path of the key at fault, for example
	// "jobs.app.source.type" or "recipients[1]"; empty for the whole file.
	Field string `json:"field,omitempty"`
	// Msg says what is wrong and, where there is one, how to fix it.
	Msg string `json:"message"`
}

// Error formats the problem as "file:line: field: message", leaving out
// the line and the field when they are unknown.
func (e *FieldError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// FieldErrors returns every *FieldError in err's tree (through
// errors.Join and %w wrapping), in the order they were reported. It
// returns nil when there are none, for example when the file could not be
// read at all.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *FieldError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}

// joinErrors orders errs by line (whole-file problems first) and joins
// them; nil when there are none.
func joinErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
