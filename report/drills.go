package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/layout"
)

// drillControl evaluates the drill control (the last drill is no older
// than drill.max_age, passed, verified its backup's manifest signature,
// and took no longer than the RTO) and builds the drill history. Evidence
// that does not record verification (written by an older Coffer) fails
// like a drill that skipped it: it cannot prove the restored data was the
// signed backup.
func (e *jobEval) drillControl() (Control, []DrillRun) {
	c := Control{ID: ControlDrill, Title: TitleDrill, Status: Pass}
	j := e.in.Job
	rto, maxAge := j.RTO.D(), j.Drill.MaxAge.D()
	from := j.Drill.From
	history := []DrillRun{}
	if e.in.DrillErr != nil {
		c.add(Fail, "drill source %s could not be read: %v", from, e.in.DrillErr)
		c.Summary = "no drill evidence could be read"
		return c, history
	}
	for _, k := range slices.Sorted(maps.Keys(e.in.BadDrills)) {
		c.add(Warn, "drill report %s in %s could not be read: %v", k, from, e.in.BadDrills[k])
	}
	for _, o := range slices.Sorted(maps.Keys(e.in.UnverifiedDrills)) {
		c.add(Warn, "drill report %s: signature not verified: %v", o, e.in.UnverifiedDrills[o])
	}
	drills := slices.Clone(e.in.Drills)
	slices.SortFunc(drills, func(a, b *drill.Report) int {
		return cmp.Or(a.Finished.Compare(b.Finished), strings.Compare(a.ID, b.ID))
	})
	for i, r := range drills {
		if r.Started.Before(e.from) && i != len(drills)-1 {
			continue
		}
		run := DrillRun{
			ID: r.ID, Backup: r.Backup, From: r.From, Started: r.Started, Finished: r.Finished,
			TotalSeconds: r.TotalSeconds, RTOSeconds: rto.Seconds(), Result: r.Result,
			OverRTO: r.Total() > rto, Error: r.Error, Warning: r.Warning,
			ManifestVerified: r.ManifestVerified, ManifestSignedBy: r.ManifestSignedBy,
		}
		if why := r.Unproven(); r.Passed() && why != "" {
			run.Result, run.Error = drill.Failed, why
		}
		history = append(history, run)
	}
	if len(drills) == 0 {
		c.add(Fail, "no drill report in %s (under %s)", from, layout.DrillReports(j.Name))
		if !j.Drill.Enabled {
			c.add(Fail, "drills are disabled for job %s (drill.enabled: false)", j.Name)
		}
		c.Summary = "no restore drill on record"
		return c, history
	}
	last := drills[len(drills)-1]
	age := e.now.Sub(last.Finished)
	took := last.Total()
	pct := 0.0
	if rto > 0 {
		pct = 100 * took.Seconds() / rto.Seconds()
	}
	c.add(Pass, "last drill %s restored backup %s from %s; finished %s, %s ago; took %s (%.0f s), %.0f%% of the RTO %s (%.0f s); %s",
		last.ID, last.Backup, last.From, stamp(last.Finished), human.Duration(age), human.Duration(took), took.Seconds(), pct, human.Duration(rto), rto.Seconds(), drillVerdict(last))
	var problems []string
	if age > maxAge {
		problems = append(problems, fmt.Sprintf("%s old, more than max_age %s", human.Duration(age), human.Duration(maxAge)))
		c.add(Fail, "last drill %s is %s old, older than max_age %s", last.ID, human.Duration(age), human.Duration(maxAge))
	}
	if why := last.Unproven(); last.Passed() && why != "" {
		problems = append(problems, "manifest signature not verified")
		c.add(Fail, "last drill %s is no evidence: %s", last.ID, why)
		if p := lastPassed(drills); p != nil {
			c.add(Fail, "last passing drill that verified its manifest: %s, finished %s, %s ago", p.ID, stamp(p.Finished), human.Duration(e.now.Sub(p.Finished)))
		} else {
			c.add(Fail, "no drill on record passed with a verified manifest")
		}
	}
	if !last.Passed() {
		problems = append(problems, "failed")
		why := last.Error
		if why == "" {
			why = "no error recorded"
		}
		c.add(Fail, "last drill %s failed: %s", last.ID, why)
		if p := lastPassed(drills); p != nil {
			c.add(Fail, "last passing drill: %s, finished %s, %s ago", p.ID, stamp(p.Finished), human.Duration(e.now.Sub(p.Finished)))
		} else {
			c.add(Fail, "no drill on record passed")
		}
	}
	if took > rto {
		problems = append(problems, fmt.Sprintf("took %s, over the RTO %s", human.Duration(took), human.Duration(rto)))
		c.add(Fail, "last drill %s took %s (%.0f s), over the RTO %s (%.0f s) by %s",
			last.ID, human.Duration(took), took.Seconds(), human.Duration(rto), rto.Seconds(), human.Duration(took-rto))
	}
	if last.Warning != "" {
		c.add(Warn, "last drill %s warned: %s", last.ID, last.Warning)
	}
	if len(problems) > 0 {
		c.Summary = fmt.Sprintf("last drill (%s): %s", day(last.Finished, e.loc), strings.Join(problems, "; "))
	} else {
		c.Summary = fmt.Sprintf("last drill (%s, %s ago, max %s) passed in %s, %.0f%% of the RTO %s",
			day(last.Finished, e.loc), human.Duration(age), human.Duration(maxAge), human.Duration(took), pct, human.Duration(rto))
	}
	return c, history
}

// lastPassed returns the newest drill of drills (sorted oldest first)
// that passed with a verified manifest, or nil.
func lastPassed(drills []*drill.Report) *drill.Report {
	for i := len(drills) - 1; i >= 0; i-- {
		if drills[i].Passed() && drills[i].Unproven() == "" {
			return drills[i]
		}
	}
	return nil
}

// drillVerdict is a drill's recorded result and whether its manifest signature
// was verified.
func drillVerdict(r *drill.Report) string {
	switch {
	case r.ManifestSignedBy != "":
		return string(r.Result) + ", manifest signed by " + r.ManifestSignedBy
	case r.ManifestVerified == nil:
		return string(r.Result) + ", manifest verification not recorded"
	case !*r.ManifestVerified:
		return string(r.Result) + ", manifest signature NOT verified"
	}
	return string(r.Result) + ", manifest verified"
}
