package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Expectation is a parsed DrillCheck.Expect: a numeric comparison or an
// exact text.
type Expectation struct {
	// Op is one of ">", ">=", "<", "<=", "=", "!=", or "" for exact text.
	Op   string
	Num  float64
	Text string
}

var expectOps = []string{">=", "<=", "!=", ">", "<", "="}

// ParseExpectation parses an expect value: "> 0", ">= 10", "= 42", or any
// text without a leading operator, which the result must equal exactly.
func ParseExpectation(s string) (Expectation, error) {
	t := strings.TrimSpace(s)
	for _, op := range expectOps {
		rest, ok := strings.CutPrefix(t, op)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		n, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			return Expectation{}, fmt.Errorf("%q: after %q want a number, got %q", s, op, rest)
		}
		return Expectation{Op: op, Num: n}, nil
	}
	return Expectation{Text: s}, nil
}

// Match reports whether a query result satisfies the expectation. A
// numeric comparison fails on a result that is not a number.
func (e Expectation) Match(got string) bool {
	if e.Op == "" {
		return got == e.Text
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(got), 64)
	if err != nil {
		return false
	}
	switch e.Op {
	case ">":
		return n > e.Num
	case ">=":
		return n >= e.Num
	case "<":
		return n < e.Num
	case "<=":
		return n <= e.Num
	case "=":
		return n == e.Num
	case "!=":
		return n != e.Num
	}
	return false
}

// String is the expectation as written, normalised.
func (e Expectation) String() string {
	if e.Op == "" {
		return strconv.Quote(e.Text)
	}
	return e.Op + " " + strconv.FormatFloat(e.Num, 'g', -1, 64)
}
