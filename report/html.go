package report

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/human"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate renders the HTML report; html/template escapes every value
// from the report (error texts come from servers and must not become
// markup).
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper":    statusWord,
	"verdict":  verdict,
	"stamp":    stamp,
	"human":    human.Seconds,
	"percent":  percent,
	"timeline": timelineChart,
	"drills":   drillChart,
	"colours": func() map[string]string {
		return map[string]string{"pass": colourPass, "warn": colourWarn, "fail": colourFail,
			"audited": colourAudited, "pending": colourPending, "ink": colourInk, "grid": colourGrid}
	},
	"controls":  countControls,
	"rows":      func(j JobReport) []timelineRow { return timelineRows(&j) },
	"protected": func(j JobReport) string { return protectedLine(&j) },
	"date":      func(t time.Time) string { return t.UTC().Format("2006-01-02") },
}).Parse(htmlSource))

// percent formats a as a whole percentage of b.
func percent(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return strings.TrimSuffix(strings.TrimSuffix(num(100*a/b), "0"), ".") + "%"
}

// WriteHTML writes r as one self-contained HTML page: inline CSS, the
// weekly timeline of every destination and the drill durations against
// the RTO as inline SVG, and every control with its evidence. It has no
// script and loads nothing, and it prints on A4.
func WriteHTML(w io.Writer, r *Report) error {
	return htmlTemplate.Execute(w, r)
}

// htmlPristine is a copy of htmlTemplate that is never executed, so that
// HTMLTemplate can always clone it.
var htmlPristine = template.Must(htmlTemplate.Clone())

// HTMLTemplate returns a new copy of the HTML report's templates, for a
// page that shows parts of the report inside its own (the daemon's page):
// "css" is the style sheet (the content of a <style> element) and "job"
// one JobReport's section (controls, weekly timeline, drill chart and
// table, recipients). Add templates with New(name).Parse; the report's
// template function names are taken.
func HTMLTemplate() *template.Template {
	return template.Must(htmlPristine.Clone())
}
