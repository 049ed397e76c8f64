package report

import "strings"

// weekRange names the ISO weeks first to last, given as "2026-W37": one
// week alone ("2026-W37"), a run within a year ("2026-W37..W48") or
// across a year's end ("2025-W51..2026-W02").
func weekRange(first, last string) string {
	if first == last {
		return first
	}
	fy, _, ok1 := strings.Cut(first, "-W")
	ly, lw, ok2 := strings.Cut(last, "-W")
	if ok1 && ok2 && fy == ly {
		return first + "..W" + lw
	}
	return first + ".." + last
}

// run is a stretch of consecutive weeks of one timeline, by index, that
// share how they are told (a status and, for unproven weeks, why).
type run struct {
	from, to int // indexes of the first and last week
	key      string
}

// runs groups the indexes of weeks, in increasing order, into runs of
// consecutive indexes with the same key.
func runs(idx []int, key func(i int) string) []run {
	var out []run
	for _, i := range idx {
		k := key(i)
		if n := len(out); n > 0 && out[n-1].to == i-1 && out[n-1].key == k {
			out[n-1].to = i
			continue
		}
		out = append(out, run{from: i, to: i, key: k})
	}
	return out
}

// timelineRow is one row of a job's weekly timeline as a person reads it:
// one week, or a run of weeks that read the same in every destination
// (missing or not yet protected).
type timelineRow struct {
	// Week is the ISO week or the range, e.g. "2026-W37..W48"; Start is
	// the first week's Monday.
	Week, Start string
	// Cells are the first week's entries, one per destination.
	Cells []Week
}

// timelineRows lays j's coverage out as rows of weeks, folding
// consecutive weeks into one row when every destination has them
// missing, or not yet protected, with nothing known of them. JSON keeps
// every week; this is for text and HTML.
func timelineRows(j *JobReport) []timelineRow {
	if len(j.Coverage) == 0 {
		return nil
	}
	cells := func(i int) []Week {
		var out []Week
		for _, c := range j.Coverage {
			if i < len(c.Weeks) {
				out = append(out, c.Weeks[i])
			}
		}
		return out
	}
	// foldable returns the status every destination gives week i, when
	// the week may join a run; "" otherwise.
	foldable := func(i int) string {
		cs := cells(i)
		if len(cs) != len(j.Coverage) {
			return ""
		}
		s := cs[0].Status
		for _, c := range cs {
			if c.Status != s || c.Backups > 0 || c.Unproven > 0 {
				return ""
			}
		}
		if s == WeekMissing || s == WeekNotYetProtected {
			return s
		}
		return ""
	}
	weeks := j.Coverage[0].Weeks
	var rows []timelineRow
	for i := 0; i < len(weeks); i++ {
		k := foldable(i)
		last := i
		for k != "" && last+1 < len(weeks) && foldable(last+1) == k {
			last++
		}
		rows = append(rows, timelineRow{Week: weekRange(weeks[i].Week, weeks[last].Week), Start: weeks[i].Start, Cells: cells(i)})
		i = last
	}
	return rows
}
