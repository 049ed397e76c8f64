package page

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/report"
	"github.com/coffer-backup/coffer/restore"
)

// jobView is one job at a glance: where its newest backups are, when the
// next is due, its drills against the RTO, and how to restore it now.
type jobView struct {
	Name, Source       string
	Schedule, Timezone string
	NextBackup         string // time and "in ..."
	Dests              []destView
	// Restore and StockTools restore the newest backup (restore.Commands).
	Restore, StockTools string
	NewestID            string
	RTO                 string
	DrillFrom           string
	DrillErr            string
	LastDrill           *drillView
	NextDrill           string // "" when drills are disabled
}

// destView is one destination of a job.
type destView struct {
	Name, Role string
	Err        string
	Count      int // complete backups present
	Last       *backupView
	// NotUsed are the backups there whose manifest does not check out
	// (untrusted key, incomplete copy), with why.
	NotUsed []string
}

// backupView is a destination's newest complete backup.
type backupView struct {
	ID, Finished, Age string
	Stored, Plain     string
	Sequence          int64
	Verified          bool
	SignedBy          string
	Unverified        string // why the signature did not verify, when read anyway
}

// drillView is a job's newest drill, judged against the job's RTO.
type drillView struct {
	ID, Backup, From string
	Finished, Age    string
	Passed           bool
	Result           string
	Took, RTO, OfRTO string
	Over             bool
	Headroom         string // the RTO minus the drill's time
	HeadroomBytes    string // how much the dump may grow before a restore misses the RTO
	Error, Warning   string
	Unproven         string
}

// jobViews describes every job of in for a person at now.
func jobViews(cfg *config.Config, in report.Input, now time.Time) []jobView {
	out := make([]jobView, 0, len(in.Jobs))
	for _, ji := range in.Jobs {
		out = append(out, jobOf(cfg, ji, now))
	}
	return out
}

func jobOf(cfg *config.Config, ji report.JobInput, now time.Time) jobView {
	j := ji.Job
	loc := j.Location()
	v := jobView{Name: j.Name, Source: j.Source.Type, Schedule: j.Schedule, Timezone: loc.String(),
		RTO: human.Duration(j.RTO.D()), DrillFrom: j.Drill.From}
	next := j.BackupSchedule().Next(now.In(loc))
	v.NextBackup = fmt.Sprintf("%s (in %s)", stamp(next), human.Duration(next.Sub(now)))
	if j.Drill.Enabled {
		n := j.DrillSchedule().Next(now.In(loc))
		v.NextDrill = fmt.Sprintf("%s (in %s)", stamp(n), human.Duration(n.Sub(now)))
	}

	// The newest backup anywhere, and the destinations holding it.
	var newest *manifest.Manifest
	var present []string
	for _, d := range ji.Destinations {
		dv := destView{Name: d.Name, Role: d.Role, Count: len(d.Manifests)}
		if d.Err != nil {
			dv.Err = d.Err.Error()
		}
		for _, b := range d.Bad {
			dv.NotUsed = append(dv.NotUsed, fmt.Sprintf("%s: %v", b.ID, b.Err))
		}
		if m := newestOf(d.Manifests); m != nil {
			bv := &backupView{ID: m.ID, Finished: stamp(m.Finished), Age: human.Duration(now.Sub(m.Finished)),
				Stored: human.Bytes(m.Payload.Bytes), Plain: human.Bytes(m.Plain.Bytes), Sequence: m.Sequence,
				SignedBy: m.SignedBy, Verified: m.SignedBy != ""}
			for _, u := range d.Unverified {
				if u.ID == m.ID {
					bv.Verified, bv.Unverified = false, u.Err.Error()
				}
			}
			dv.Last = bv
			switch {
			case newest == nil || later(m, newest):
				newest, present = m, []string{d.Name}
			case m.ID == newest.ID:
				present = append(present, d.Name)
			}
		}
		v.Dests = append(v.Dests, dv)
	}
	if newest != nil {
		v.NewestID = newest.ID
		v.Restore, v.StockTools = restore.Commands(cfg, j, present, newest)
	}

	if ji.DrillErr != nil {
		v.DrillErr = ji.DrillErr.Error()
	}
	if r := newestDrill(ji.Drills); r != nil {
		rto := j.RTO.D()
		dv := &drillView{ID: r.ID, Backup: r.Backup, From: r.From, Finished: stamp(r.Finished),
			Age: human.Duration(now.Sub(r.Finished)), Passed: r.Passed() && r.Unproven() == "", Result: string(r.Result),
			Took: human.Seconds(r.TotalSeconds), RTO: human.Duration(rto), Over: r.Total() > rto,
			Error: r.Error, Warning: r.Warning, Unproven: r.Unproven()}
		if rto > 0 {
			dv.OfRTO = drill.Percent(r.TotalSeconds / rto.Seconds())
		}
		if h := rto - r.Total(); h >= 0 {
			dv.Headroom = human.Duration(h)
		} else {
			dv.Headroom = "none: over the RTO by " + human.Duration(-h)
		}
		if r.HeadroomBytes > 0 {
			dv.HeadroomBytes = human.Bytes(r.HeadroomBytes)
		}
		v.LastDrill = dv
	}
	return v
}

// later reports whether a is a newer backup than b.
func later(a, b *manifest.Manifest) bool {
	return cmp.Or(a.Finished.Compare(b.Finished), cmp.Compare(a.ID, b.ID)) > 0
}

func newestOf(ms []*manifest.Manifest) *manifest.Manifest {
	var n *manifest.Manifest
	for _, m := range ms {
		if n == nil || later(m, n) {
			n = m
		}
	}
	return n
}

func newestDrill(rs []*drill.Report) *drill.Report {
	if len(rs) == 0 {
		return nil
	}
	return slices.MaxFunc(rs, func(a, b *drill.Report) int {
		return cmp.Or(a.Finished.Compare(b.Finished), cmp.Compare(a.ID, b.ID))
	})
}

// stamp formats t for the page: UTC to the minute, as the report does.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
