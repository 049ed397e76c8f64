package report

import (
	"fmt"
	"math"
	"time"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/human"
)

// Colours of the HTML report, shared by the status badges and the charts
// so that a glance (or a test looking at pixels) finds the same pass and
// fail colours everywhere.
const (
	colourPass    = "#2e7d32" // pass, a week with a backup present
	colourAudited = "#81c784" // a week known from the audit trail only
	colourWarn    = "#ef6c00"
	colourFail    = "#c62828" // fail, a missing week, a drill over the RTO
	colourPending = "#bdbdbd"
	// colourNotYet: a week before the job's protection began, not
	// judged; a lighter grey than the pending current week.
	colourNotYet = "#e0e0e0"
	// colourUnproven: a week shown only by audit events whose chain is
	// broken or unverifiable; fails like a missing week.
	colourUnproven = "#ff8f00"
	colourInk      = "#212121"
	colourGrid     = "#9e9e9e"
)

// svgWidth is the charts' coordinate width; they scale to the page.
const svgWidth = 720.0

// svgRect is a filled rectangle with a tooltip.
type svgRect struct {
	X, Y, W, H string
	Fill       string
	Title      string
}

// svgText is a label.
type svgText struct {
	X, Y   string
	Anchor string // start, middle or end
	Text   string
}

// svgLine is a line; Dash is a stroke-dasharray or "".
type svgLine struct {
	X1, Y1, X2, Y2 string
	Stroke, Dash   string
	Width          string
}

// chart is one inline SVG: its size and what to draw.
type chart struct {
	W, H  string
	Label string // the accessible name of the figure
	Rects []svgRect
	Texts []svgText
	Lines []svgLine
}

// num formats a coordinate.
func num(f float64) string { return fmt.Sprintf("%.1f", f) }

// timelineChart draws one row per destination and one cell per week,
// coloured by what is known of that week.
func timelineChart(j JobReport) chart {
	const left, top, rowH, gap, legendH = 120.0, 28.0, 26.0, 8.0, 34.0
	weeks := 0
	for _, c := range j.Coverage {
		weeks = max(weeks, len(c.Weeks))
	}
	cellW := 0.0
	if weeks > 0 {
		cellW = math.Min(40, (svgWidth-left-8)/float64(weeks))
	}
	height := top + float64(len(j.Coverage))*(rowH+gap) + legendH
	ch := chart{W: num(svgWidth), H: num(height), Label: "Weekly backups of job " + j.Job + " per destination"}
	every := max(1, int(math.Ceil(34/math.Max(cellW, 1)))) // a label needs about 34 units
	if len(j.Coverage) > 0 {
		for i, w := range j.Coverage[0].Weeks {
			if i%every != 0 {
				continue
			}
			ch.Texts = append(ch.Texts, svgText{X: num(left + (float64(i)+0.5)*cellW), Y: num(top - 8), Anchor: "middle", Text: w.Week[5:]})
		}
	}
	for r, c := range j.Coverage {
		y := top + float64(r)*(rowH+gap)
		name := c.Destination + " (" + c.Role + ")"
		ch.Texts = append(ch.Texts, svgText{X: num(left - 8), Y: num(y + rowH/2 + 4), Anchor: "end", Text: name})
		for i, w := range c.Weeks {
			fill, what := colourFail, "no complete backup"
			switch {
			case w.Status == WeekPending:
				fill, what = colourPending, "current week, not due yet"
			case w.Status == WeekNotYetProtected:
				fill, what = colourNotYet, "not yet protected: "+protectedLine(&j)
			case w.Status == WeekUnproven:
				fill, what = colourUnproven, fmt.Sprintf("%d only in unproven audit events (chain broken or unverifiable)", w.Unproven)
			case w.Present > 0:
				fill, what = colourPass, fmt.Sprintf("%d present", w.Present)
			case w.Status == WeekCovered:
				fill, what = colourAudited, fmt.Sprintf("%d in the %s", w.Audited, w.Source)
			}
			ch.Rects = append(ch.Rects, svgRect{
				X: num(left + float64(i)*cellW + 1), Y: num(y), W: num(math.Max(cellW-2, 1)), H: num(rowH),
				Fill: fill, Title: fmt.Sprintf("%s %s (from %s): %s", c.Destination, w.Week, w.Start, what),
			})
		}
	}
	ly := height - legendH + 14
	x := 8.0 // the legend is wider than the plot
	for _, l := range []struct{ fill, text string }{
		{colourPass, "backup present"}, {colourAudited, "audit trail only (pruned since)"},
		{colourFail, "missing"}, {colourUnproven, "unproven"}, {colourPending, "current week"},
		{colourNotYet, "not yet protected"},
	} {
		ch.Rects = append(ch.Rects, svgRect{X: num(x), Y: num(ly), W: "12", H: "12", Fill: l.fill, Title: l.text})
		ch.Texts = append(ch.Texts, svgText{X: num(x + 16), Y: num(ly + 10), Anchor: "start", Text: l.text})
		x += 22 + 6.2*float64(len(l.text))
	}
	return ch
}

// drillChart draws each drill's duration as a bar against a dashed line
// at the RTO: green for a passed drill within the RTO, red otherwise.
func drillChart(j JobReport) chart {
	const left, right, top, plotH, bottom = 64.0, 16.0, 16.0, 180.0, 40.0
	ch := chart{W: num(svgWidth), H: num(top + plotH + bottom), Label: "Drill durations of job " + j.Job + " against the RTO"}
	rto := j.RTOSeconds
	maxS := rto * 1.25
	for _, d := range j.Drills {
		maxS = math.Max(maxS, d.TotalSeconds*1.1)
	}
	if maxS <= 0 {
		maxS = 1
	}
	y := func(s float64) float64 { return top + plotH - plotH*s/maxS }
	plotW := svgWidth - left - right
	// Axes and ticks at 0, half the RTO and the top.
	ch.Lines = append(ch.Lines, svgLine{X1: num(left), Y1: num(top), X2: num(left), Y2: num(top + plotH), Stroke: colourGrid, Width: "1"},
		svgLine{X1: num(left), Y1: num(top + plotH), X2: num(left + plotW), Y2: num(top + plotH), Stroke: colourGrid, Width: "1"})
	for _, s := range []float64{0, rto / 2, maxS} {
		ch.Texts = append(ch.Texts, svgText{X: num(left - 6), Y: num(y(s) + 4), Anchor: "end", Text: human.Duration(seconds(s).Round(time.Minute))})
	}
	if len(j.Drills) == 0 {
		ch.Texts = append(ch.Texts, svgText{X: num(left + plotW/2), Y: num(top + plotH/2), Anchor: "middle", Text: "no drills on record"})
	}
	slot := plotW / float64(max(len(j.Drills), 1))
	barW := math.Min(48, slot*0.7)
	for i, d := range j.Drills {
		x := left + (float64(i)+0.5)*slot
		fill := colourPass
		if d.Result != drill.Passed || d.OverRTO {
			fill = colourFail
		}
		ch.Rects = append(ch.Rects, svgRect{
			X: num(x - barW/2), Y: num(y(d.TotalSeconds)), W: num(barW), H: num(math.Max(top+plotH-y(d.TotalSeconds), 1)),
			Fill:  fill,
			Title: fmt.Sprintf("drill %s on %s: %s, took %s of the RTO %s", d.ID, stamp(d.Finished), d.Result, human.Seconds(d.TotalSeconds), human.Seconds(d.RTOSeconds)),
		})
		if len(j.Drills) <= 16 || i%2 == 0 {
			ch.Texts = append(ch.Texts, svgText{X: num(x), Y: num(top + plotH + 16), Anchor: "middle", Text: d.Finished.UTC().Format("2006-01-02")})
		}
	}
	// The RTO line last, so it is drawn over the bars.
	ch.Lines = append(ch.Lines, svgLine{X1: num(left), Y1: num(y(rto)), X2: num(left + plotW), Y2: num(y(rto)), Stroke: colourFail, Dash: "6 4", Width: "2"})
	ch.Texts = append(ch.Texts, svgText{X: num(left + plotW), Y: num(y(rto) - 6), Anchor: "end", Text: "RTO " + human.Seconds(rto)})
	return ch
}
