package report

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Pacific/Auckland on machines without a zoneinfo database

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/manifest"
)

// dest returns the job's destination named name.
func dest(in *Input, name string) *DestinationInput {
	for i := range in.Jobs[0].Destinations {
		if d := &in.Jobs[0].Destinations[i]; d.Name == name {
			return d
		}
	}
	panic("no destination " + name)
}

// dropManifest removes the manifest of backup id from d.
func dropManifest(d *DestinationInput, id string) {
	d.Manifests = slices.DeleteFunc(d.Manifests, func(m *manifest.Manifest) bool { return m.ID == id })
}

// dropEvents removes the audit events about backup id at destination.
func dropEvents(ji *JobInput, id, destination string) {
	ji.Events = slices.DeleteFunc(ji.Events, func(ev audit.Event) bool {
		return ev.BackupID == id && ev.Destination == destination
	})
}

// dropWeeks removes every trace of the first n weekly backups of the
// clean history: manifests and audit events, in every destination.
func dropWeeks(ji *JobInput, n int) {
	for _, t := range sundays()[:n] {
		for i := range ji.Destinations {
			d := &ji.Destinations[i]
			dropManifest(d, backupID(t))
			dropEvents(ji, backupID(t), d.Name)
		}
	}
}

// sunday is the backup time of the clean history's week starting on
// Monday m (2026).
func sunday(month time.Month, dayOfMonth int) time.Time {
	return time.Date(2026, month, dayOfMonth, 2, 0, 0, 0, time.UTC)
}

// expect is one control's expected outcome: its status, and text that
// must appear in one evidence line each (and, with summary, in the
// summary).
type expect struct {
	status   Status
	evidence []string
	summary  string
}

func TestEvaluate(t *testing.T) {
	cases := []struct {
		name string
		// edit turns the clean history into the case's.
		edit func(in *Input)
		// want maps control ids to their expected outcome; controls not
		// named must pass.
		want map[string]expect
	}{
		{
			name: "clean history",
			edit: func(*Input) {},
			want: map[string]expect{
				ControlWeekly: {status: Pass, evidence: []string{
					"primary (primary): 12 of 12 weeks covered (5 by backups present, 7 by the audit trail only)",
					"offsite (offsite): 12 of 12 weeks covered",
					"week 2026-W16 is the current week and not judged yet: its scheduled backup (2026-04-19 02:00 UTC) counts as missing from 2026-04-19 08:00 UTC",
				}, summary: "every week from 2026-01-19 has a complete backup in primary and offsite"},
				ControlRetention: {status: Pass, evidence: []string{
					"policy: keep_within 28d, min_keep 2; a backup may be present up to 36d old (grace 8d: schedule period 7d + 1d)",
				}},
				ControlEncryption: {status: Pass, evidence: []string{"configured recipients: age1qyqszqgp...3290gq"},
					summary: "10 backup copies checked"},
				ControlDrill: {status: Pass, evidence: []string{
					"last drill 20260401T040000.000Z-7f3a restored backup 20260401T020000.000Z-7f3a from offsite; finished 2026-04-01 05:00 UTC, 14d7h ago; took 1h (3600 s), 12% of the RTO 8h (28800 s); passed",
				}},
			},
		},
		{
			name: "missing week in the offsite destination",
			edit: func(in *Input) {
				// 2026-W07's backup never reached offsite: the audit
				// trail has no ok event for it there, and it was pruned
				// from primary since.
				id := backupID(sunday(2, 15))
				dropEvents(&in.Jobs[0], id, "offsite")
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"offsite: week 2026-W07 (from 2026-02-09) has no complete backup",
					"offsite (offsite): 11 of 12 weeks covered",
					"first known backup of job app: 2026-01-25",
				}, summary: "1 missing week: 2026-W07 in offsite"},
			},
		},
		{
			name: "missing week in the primary while its backup is still retained",
			edit: func(in *Input) {
				id := backupID(sunday(3, 29))
				dropManifest(dest(in, "primary"), id)
				dropEvents(&in.Jobs[0], id, "primary")
				for _, m := range dest(in, "offsite").Manifests {
					if m.ID == id {
						m.Copies = m.Copies[1:]
					}
				}
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{"primary: week 2026-W13 (from 2026-03-23) has no complete backup"}},
			},
		},
		{
			name: "weeks before the first backup are not yet protected, and say when protection began",
			edit: func(in *Input) {
				dropWeeks(&in.Jobs[0], 3) // W04, W05, W06
			},
			want: map[string]expect{
				ControlWeekly: {status: Pass, evidence: []string{
					"primary (primary): 9 of 9 weeks covered",
					"job app: protected since 2026-02-15 (first backup); the 3 weeks before, 2026-W04..W06, were not yet protected and are not judged",
				}, summary: "every week from 2026-02-09 has a complete backup in primary and offsite; the 3 weeks before were not yet protected (protected since 2026-02-15, first backup)"},
			},
		},
		{
			name: "a job whose first backup is this week passes over 12 weeks",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				dropWeeks(ji, len(sundays()))
				// Created on Monday of the current week, backed up by
				// hand at once.
				first := time.Date(2026, 4, 13, 10, 0, 0, 0, time.UTC)
				for i := range ji.Destinations {
					d := &ji.Destinations[i]
					d.Manifests = append(d.Manifests, newManifest("app", first, []string{"primary", "offsite"}, keyA))
					ji.Events = append(ji.Events, event(first.Add(time.Minute), audit.ActionBackup, backupID(first), d.Name, audit.OutcomeOK, ""))
				}
			},
			want: map[string]expect{
				ControlWeekly: {status: Pass, evidence: []string{
					"primary (primary): 1 of 1 weeks covered (1 by backups present, 0 by the audit trail only)",
					"job app: protected since 2026-04-13 (first backup); the 12 weeks before, 2026-W04..W15, were not yet protected and are not judged",
				}, summary: "every week from 2026-04-13 has a complete backup in primary and offsite; the 12 weeks before were not yet protected (protected since 2026-04-13, first backup)"},
			},
		},
		{
			name: "protected_since judges the weeks before the first backup",
			edit: func(in *Input) {
				dropWeeks(&in.Jobs[0], 3)
				in.Jobs[0].Job.ProtectedSince = config.Date{Year: 2026, Month: 1, Day: 21}
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"primary: weeks 2026-W04..W06 (2026-01-19 to 2026-02-08) have no complete backup",
					"offsite: weeks 2026-W04..W06 (2026-01-19 to 2026-02-08) have no complete backup",
					"job app: protected since 2026-01-21 (jobs.app.protected_since)",
					"first known backup of job app: 2026-02-15 (20260215T020000.000Z-7f3a, in primary)",
				}, summary: "6 missing weeks: 2026-W04..W06 in primary, 2026-W04..W06 in offsite"},
			},
		},
		{
			name: "a first audit event before the first backup starts protection",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				dropWeeks(ji, 3)
				// W05's backup failed: the job existed from then on.
				ji.Events = append(ji.Events, event(sunday(2, 1).Add(3*time.Minute), audit.ActionBackup, "", "", audit.OutcomeFailed, ""))
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"primary: weeks 2026-W05..W06 (2026-01-26 to 2026-02-08) have no complete backup",
					"job app: protected since 2026-02-01 (first audit event); the 1 week before, 2026-W04, were not yet protected",
				}, summary: "4 missing weeks: 2026-W05..W06 in primary, 2026-W05..W06 in offsite"},
			},
		},
		{
			name: "protected_since after the first backup: the first backup wins",
			edit: func(in *Input) {
				in.Jobs[0].Job.ProtectedSince = config.Date{Year: 2026, Month: 4, Day: 1}
				dropEvents(&in.Jobs[0], backupID(sunday(2, 15)), "offsite")
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"job app: protected since 2026-01-25 (first backup)",
					"offsite: week 2026-W07 (from 2026-02-09) has no complete backup",
				}, summary: "1 missing week: 2026-W07 in offsite"},
			},
		},
		{
			name: "protected_since with every backup and event gone",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				dropWeeks(ji, len(sundays()))
				ji.Job.ProtectedSince = config.Date{Year: 2026, Month: 3, Day: 2}
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"primary: weeks 2026-W10..W15 (2026-03-02 to 2026-04-12) have no complete backup",
					"job app: protected since 2026-03-02 (jobs.app.protected_since); the 6 weeks before, 2026-W04..W09, were not yet protected",
					"no backup of job app is known, present or in the audit trail",
				}, summary: "12 missing weeks: 2026-W10..W15 in primary, 2026-W10..W15 in offsite"},
			},
		},
		{
			name: "every backup gone but the job's first audit event is older than the window",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				dropWeeks(ji, len(sundays()))
				ji.FirstEvent = time.Date(2025, 6, 1, 2, 5, 0, 0, time.UTC)
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"job app: protected since 2025-06-01 (first audit event)",
					"primary: weeks 2026-W04..W15 (2026-01-19 to 2026-04-12) have no complete backup",
				}, summary: "24 missing weeks: 2026-W04..W15 in primary, 2026-W04..W15 in offsite"},
			},
		},
		{
			name: "nothing known of the job: not protected yet, a warning",
			edit: func(in *Input) {
				dropWeeks(&in.Jobs[0], len(sundays()))
			},
			want: map[string]expect{
				ControlWeekly: {status: Warn, evidence: []string{
					"job app is not protected yet: no backup of it is known, present or in the audit trail, and no audit event; every week is not yet protected (set jobs.app.protected_since to judge its weeks from a date)",
				}, summary: "job app is not protected yet"},
			},
		},
		{
			name: "pruned then purged: the audit trail alone shows the job protected",
			edit: func(in *Input) {
				// Every backup still present is purged on request: only
				// the audit trail shows any backup now.
				ji := &in.Jobs[0]
				for i := range ji.Destinations {
					d := &ji.Destinations[i]
					for _, m := range d.Manifests {
						ji.Events = append(ji.Events, event(now.Add(-time.Hour), audit.ActionPurge, m.ID, d.Name, audit.OutcomeOK, ""))
					}
					d.Manifests = nil
				}
			},
			want: map[string]expect{
				ControlWeekly: {status: Pass, evidence: []string{
					"primary (primary): 12 of 12 weeks covered (0 by backups present, 12 by the audit trail only)",
					"job app: protected since 2026-01-25 (first backup)",
				}, summary: "every week from 2026-01-19 has a complete backup in primary and offsite"},
				// Purges inside keep_within warn; nothing is present to
				// encrypt or keep.
				ControlRetention: {status: Warn, evidence: []string{"was purged on request"}},
			},
		},
		{
			name: "current week due and missing",
			edit: func(in *Input) {
				// Sunday 2026-04-19 09:00: the 02:00 backup is 7h late.
				in.Now = time.Date(2026, 4, 19, 9, 0, 0, 0, time.UTC)
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"primary: week 2026-W16 (from 2026-04-13) has no complete backup",
					"offsite: week 2026-W16 (from 2026-04-13) has no complete backup",
				}},
			},
		},
		{
			name: "current week not yet past its grace",
			edit: func(in *Input) {
				in.Now = time.Date(2026, 4, 19, 7, 59, 0, 0, time.UTC)
			},
			want: map[string]expect{
				ControlWeekly: {status: Pass, evidence: []string{"week 2026-W16 is the current week and not judged yet"}},
			},
		},
		{
			name: "single destination has no offsite copy",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				ji.Destinations = ji.Destinations[:1]
				ji.Job.Destinations = ji.Job.Destinations[:1]
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{"job app has a single destination (primary): there is no offsite copy"}},
				// The drill source is no longer a destination, but its
				// reports are still given: the drill control passes.
			},
		},
		{
			name: "backup held too long",
			edit: func(in *Input) {
				// Both destinations still hold 2026-03-01's backup, 45
				// days old: the prunes recorded for it never happened.
				id := backupID(sunday(3, 1))
				for _, name := range []string{"primary", "offsite"} {
					d := dest(in, name)
					d.Manifests = append(d.Manifests, newManifest("app", sunday(3, 1), []string{"primary", "offsite"}, keyA))
				}
				ji := &in.Jobs[0]
				ji.Events = slices.DeleteFunc(ji.Events, func(ev audit.Event) bool {
					return ev.BackupID == id && ev.Action == audit.ActionPrune
				})
			},
			want: map[string]expect{
				ControlRetention: {status: Fail, evidence: []string{
					"primary: backup 20260301T020000.000Z-7f3a is 45d10h old, kept beyond keep_within 28d + grace 8d and held by no rule",
					"offsite: backup 20260301T020000.000Z-7f3a is 45d10h old, kept beyond keep_within 28d + grace 8d and held by no rule",
				}, summary: "2 backup copies kept too long, 0 backup copies deleted inside keep_within"},
			},
		},
		{
			name: "old backup held by Object Lock",
			edit: func(in *Input) {
				// Both copies are still there, and both destinations
				// lock their objects.
				for _, name := range []string{"primary", "offsite"} {
					d := dest(in, name)
					d.ObjectLock = "governance"
					d.Manifests = append(d.Manifests, newManifest("app", sunday(3, 1), []string{"primary", "offsite"}, keyA))
					dropEvents(&in.Jobs[0], backupID(sunday(3, 1)), name)
				}
			},
			want: map[string]expect{
				ControlRetention: {status: Pass, evidence: []string{
					"offsite: backup 20260301T020000.000Z-7f3a is 45d10h old, held by Object Lock (governance mode)",
				}},
			},
		},
		{
			name: "old backup held as the only copy",
			edit: func(in *Input) {
				off := dest(in, "offsite")
				off.Manifests = append(off.Manifests, newManifest("app", sunday(3, 1), []string{"offsite"}, keyA))
				dropEvents(&in.Jobs[0], backupID(sunday(3, 1)), "offsite")
			},
			want: map[string]expect{
				ControlRetention: {status: Pass, evidence: []string{
					"offsite: backup 20260301T020000.000Z-7f3a is 45d10h old, held by only_copy: the only complete copy on any destination",
				}},
			},
		},
		{
			name: "backup pruned early",
			edit: func(in *Input) {
				id := backupID(sunday(3, 29))
				dropManifest(dest(in, "primary"), id)
				in.Jobs[0].Events = append(in.Jobs[0].Events,
					event(sunday(4, 12).Add(10*time.Minute), audit.ActionPrune, id, "primary", "deleted", "expired"))
			},
			want: map[string]expect{
				ControlRetention: {status: Fail, evidence: []string{
					"primary: backup 20260329T020000.000Z-7f3a was pruned on 2026-04-12 02:10 UTC at 14d10m old, inside keep_within 28d (rule expired)",
				}, summary: "0 backup copies kept too long, 1 backup copy deleted inside keep_within"},
			},
		},
		{
			name: "backup gone without a recorded prune",
			edit: func(in *Input) {
				dropManifest(dest(in, "offsite"), backupID(sunday(4, 5)))
			},
			want: map[string]expect{
				ControlRetention: {status: Fail, evidence: []string{
					"offsite: backup 20260405T020000.000Z-7f3a was written there on 2026-04-05 02:05 UTC (audit trail: backup) but is missing, 10d10h old, inside keep_within 28d, with no prune or purge recorded",
				}},
			},
		},
		{
			name: "audit-only week whose chain is broken is unproven",
			edit: func(in *Input) {
				// W07's backup was pruned from offsite since: only audit
				// events show it, and their chain is broken.
				unprove(&in.Jobs[0], backupID(sunday(2, 15)), "offsite", "the local audit log is broken: line 7: edited")
			},
			want: map[string]expect{
				ControlWeekly: {status: Fail, evidence: []string{
					"offsite: week 2026-W07 (from 2026-02-09) rests only on audit events that are unproven, so no evidence: the local audit log is broken: line 7: edited",
					"offsite (offsite): 11 of 12 weeks covered (5 by backups present, 6 by the audit trail only)",
					"offsite (offsite): 1 week known only by unproven audit events",
				}, summary: "1 missing week: 2026-W07 in offsite (unproven)"},
			},
		},
		{
			name: "a proven event beats an unproven one for the same backup",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				id := backupID(sunday(2, 15))
				// Only the deletion's event is unproven: the backup's own
				// "ok" event still shows it was there.
				for _, ev := range ji.Events {
					if ev.BackupID == id && ev.Destination == "offsite" && ev.Action == audit.ActionPrune {
						if ji.UnprovenEvents == nil {
							ji.UnprovenEvents = map[string]string{}
						}
						ji.UnprovenEvents[ev.ID] = "unsigned head"
					}
				}
			},
			want: map[string]expect{},
		},
		{
			name: "audit trail unreadable",
			edit: func(in *Input) {
				in.Jobs[0].AuditErrors = []error{errors.New("audit objects in primary: connection refused")}
			},
			want: map[string]expect{
				ControlRetention: {status: Fail, evidence: []string{
					"the audit trail could not be read (audit objects in primary: connection refused): early prunes cannot be ruled out",
				}},
			},
		},
		{
			name: "stale drill",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				ji.Drills = ji.Drills[:2] // the last drill is 2026-03-01's
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"last drill 20260301T040000.000Z-7f3a is 45d7h old, older than max_age 35d",
				}, summary: "last drill (2026-03-01): 45d7h old, more than max_age 35d"},
			},
		},
		{
			name: "drill over the RTO",
			edit: func(in *Input) {
				ji := &in.Jobs[0]
				ji.Drills[2] = newDrill("app", time.Date(2026, 4, 1, 13, 0, 0, 0, time.UTC), 9*time.Hour+12*time.Minute, drill.Passed)
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"last drill 20260401T034800.000Z-7f3a took 9h12m (33120 s), over the RTO 8h (28800 s) by 1h12m",
				}, summary: "took 9h12m, over the RTO 8h"},
			},
		},
		{
			name: "failed drill",
			edit: func(in *Input) {
				r := newDrill("app", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Failed)
				r.Error = "table orders: 10 rows restored, 12 expected"
				in.Jobs[0].Drills[2] = r
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"last drill 20260401T040000.000Z-7f3a failed: table orders: 10 rows restored, 12 expected",
					"last passing drill: 20260301T040000.000Z-7f3a, finished 2026-03-01 05:00 UTC",
				}},
			},
		},
		{
			name: "drill that skipped signature verification fails",
			edit: func(in *Input) {
				r := newDrill("app", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Passed)
				r.ManifestVerified, r.ManifestSignedBy = new(bool), ""
				in.Jobs[0].Drills[2] = r
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"passed, manifest signature NOT verified",
					"last drill 20260401T040000.000Z-7f3a is no evidence: the backup's manifest signature was not verified (drill run with --insecure-skip-signature",
					"last passing drill that verified its manifest: 20260301T040000.000Z-7f3a",
				}, summary: "manifest signature not verified"},
			},
		},
		{
			name: "drill evidence from before verification was recorded fails",
			edit: func(in *Input) {
				for _, r := range in.Jobs[0].Drills {
					r.ManifestVerified, r.ManifestSignedBy = nil, ""
				}
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"passed, manifest verification not recorded",
					"does not record whether the backup's manifest signature was verified (written by an older Coffer): run a new drill",
					"no drill on record passed with a verified manifest",
				}, summary: "manifest signature not verified"},
			},
		},
		{
			name: "no drill at all",
			edit: func(in *Input) {
				in.Jobs[0].Drills = nil
				in.Jobs[0].Job.Drill.Enabled = false
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{
					"no drill report in offsite (under _coffer/drills/app/)",
					"drills are disabled for job app (drill.enabled: false)",
				}},
			},
		},
		{
			name: "drill source unreachable",
			edit: func(in *Input) {
				in.Jobs[0].Drills = nil
				in.Jobs[0].DrillErr = errors.New("list drill reports: connection refused")
			},
			want: map[string]expect{
				ControlDrill: {status: Fail, evidence: []string{"drill source offsite could not be read: list drill reports: connection refused"}},
			},
		},
		{
			name: "unreadable drill report warns",
			edit: func(in *Input) {
				in.Jobs[0].BadDrills = map[string]error{"_coffer/drills/app/x.json": errors.New("drill report is not valid JSON")}
			},
			want: map[string]expect{
				ControlDrill: {status: Warn, evidence: []string{"drill report _coffer/drills/app/x.json in offsite could not be read: drill report is not valid JSON"}},
			},
		},
		{
			name: "unverified drill report warns",
			edit: func(in *Input) {
				in.Jobs[0].UnverifiedDrills = map[string]error{"_coffer/drills/app/y.json on s3://b": errors.New("not signed")}
			},
			want: map[string]expect{
				ControlDrill: {status: Warn, evidence: []string{"drill report _coffer/drills/app/y.json on s3://b: signature not verified: not signed"}},
			},
		},
		{
			name: "backup encrypted to none of the configured recipients",
			edit: func(in *Input) {
				dest(in, "offsite").Manifests[0].Encryption.Recipients = []string{keyC}
			},
			want: map[string]expect{
				ControlEncryption: {status: Fail, evidence: []string{
					"offsite: backup 20260315T020000.000Z-7f3a is encrypted to none of the configured recipients (it is encrypted to age1lggyhqrw...qvfafg, with age)",
				}},
			},
		},
		{
			name: "key rotation in progress warns",
			edit: func(in *Input) {
				in.Jobs[0].Job.Recipients = []string{keyA, keyB}
				dest(in, "primary").Manifests[0].Encryption.Recipients = []string{keyA, keyC}
			},
			want: map[string]expect{
				ControlEncryption: {status: Warn, evidence: []string{
					"configured recipients: age1qyqszqgp...3290gq, age1zvkyg2lq...unujwj",
					"primary: backup 20260315T020000.000Z-7f3a is encrypted also to age1lggyhqrw...qvfafg, not configured; not to configured age1zvkyg2lq...unujwj",
				}},
			},
		},
		{
			name: "manifest that does not check out",
			edit: func(in *Input) {
				dest(in, "primary").Bad = []BadBackup{{ID: "20260412T020000.000Z-7f3a",
					Err: errors.New("payload app/20260412T020000.000Z-7f3a/payload.sqlite.zst.age is 399 bytes, the manifest says 400")}}
				dropManifest(dest(in, "primary"), "20260412T020000.000Z-7f3a")
			},
			want: map[string]expect{
				ControlEncryption: {status: Fail, evidence: []string{
					"primary: backup 20260412T020000.000Z-7f3a: manifest does not check out: payload app/20260412T020000.000Z-7f3a/payload.sqlite.zst.age is 399 bytes, the manifest says 400",
				}},
				// A backup whose manifest does not check out covers no
				// week, even though the audit trail saw it written.
				ControlWeekly: {status: Fail, evidence: []string{"primary: week 2026-W15 (from 2026-04-06) has no complete backup"}},
			},
		},
		{
			name: "unreachable destination fails every control that needs it",
			edit: func(in *Input) {
				off := dest(in, "offsite")
				off.Manifests, off.Err = nil, errors.New("list app on s3://offsite: connection refused")
			},
			want: map[string]expect{
				ControlWeekly:     {status: Fail, evidence: []string{"offsite: could not be read: list app on s3://offsite: connection refused"}},
				ControlRetention:  {status: Fail, evidence: []string{"offsite: could not be read: list app on s3://offsite: connection refused"}},
				ControlEncryption: {status: Fail, evidence: []string{"offsite: could not be read: list app on s3://offsite: connection refused"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := clean()
			tc.edit(&in)
			r := Evaluate(in)
			if len(r.Jobs) != 1 {
				t.Fatalf("got %d job reports, want 1", len(r.Jobs))
			}
			jr := &r.Jobs[0]
			failing := false
			for _, id := range []string{ControlWeekly, ControlRetention, ControlEncryption, ControlDrill} {
				c := jr.Control(id)
				if c == nil {
					t.Fatalf("control %s missing from the report", id)
				}
				want, named := tc.want[id]
				if !named {
					want = expect{status: Pass}
				}
				if c.Status == Fail {
					failing = true
				}
				if c.Status != want.status {
					t.Errorf("control %s: status %s, want %s\nsummary: %s\nevidence:\n  %s", id, c.Status, want.status, c.Summary, strings.Join(c.Evidence, "\n  "))
				}
				for _, w := range want.evidence {
					if !slices.ContainsFunc(c.Evidence, func(line string) bool { return strings.Contains(line, w) }) {
						t.Errorf("control %s: no evidence line contains %q; evidence:\n  %s", id, w, strings.Join(c.Evidence, "\n  "))
					}
				}
				if !strings.Contains(c.Summary, want.summary) {
					t.Errorf("control %s: summary %q does not contain %q", id, c.Summary, want.summary)
				}
			}
			if r.Passed() == failing || jr.Passed() == failing {
				t.Errorf("Report.Passed() = %v, JobReport.Passed() = %v with a failing control: %v", r.Passed(), jr.Passed(), failing)
			}
		})
	}
}

// unprove marks every audit event of backup id at destination as unproven.
func unprove(ji *JobInput, id, destination, why string) {
	if ji.UnprovenEvents == nil {
		ji.UnprovenEvents = map[string]string{}
	}
	for _, ev := range ji.Events {
		if ev.BackupID == id && ev.Destination == destination {
			ji.UnprovenEvents[ev.ID] = why
		}
	}
}

// TestEvaluateUnprovenTimeline: a week shown only by unproven audit events
// is "unproven" in the timeline, with no backup counted; with the same
// events proven it is covered.
func TestEvaluateUnprovenTimeline(t *testing.T) {
	week := func(in Input) Week {
		for _, w := range Evaluate(in).Jobs[0].Coverage[1].Weeks {
			if w.Week == "2026-W07" {
				return w
			}
		}
		t.Fatal("no week 2026-W07")
		return Week{}
	}
	if w := week(clean()); w.Status != WeekCovered || w.Audited != 1 {
		t.Errorf("proven audit evidence: week %+v, want covered by 1 audited backup", w)
	}
	in := clean()
	unprove(&in.Jobs[0], backupID(sunday(2, 15)), "offsite", "chain broken")
	want := Week{Week: "2026-W07", Start: "2026-02-09", Status: WeekUnproven, Unproven: 1, Source: SourceAuditUnproven}
	if w := week(in); w != want {
		t.Errorf("unproven audit evidence: week %+v, want %+v", w, want)
	}
	r := Evaluate(in)
	var text, csv bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csv, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "UNPROVEN") || !strings.Contains(csv.String(), "rests only on audit events that are unproven") {
		t.Errorf("text or CSV does not show the unproven week:\n%s\n%s", text.String(), csv.String())
	}
}

// TestEvaluateTimeline checks the weekly timeline of the clean history
// and of one with a missing week: which weeks rest on backups present,
// which on the audit trail, and the current week pending.
func TestEvaluateTimeline(t *testing.T) {
	in := clean()
	dropEvents(&in.Jobs[0], backupID(sunday(2, 15)), "offsite")
	r := Evaluate(in)
	cov := r.Jobs[0].Coverage
	if len(cov) != 2 || cov[0].Destination != "primary" || cov[1].Destination != "offsite" || cov[1].Role != RoleOffsite {
		t.Fatalf("coverage destinations = %+v, want primary then offsite", cov)
	}
	weeks := cov[1].Weeks
	if len(weeks) != 13 || weeks[0].Week != "2026-W04" || weeks[0].Start != "2026-01-19" || weeks[12].Week != "2026-W16" {
		t.Fatalf("offsite timeline has %d weeks from %+v, want 13 from 2026-W04 (2026-01-19) to 2026-W16", len(weeks), weeks[0])
	}
	for _, w := range weeks {
		var want Week
		switch {
		case w.Week == "2026-W07":
			want = Week{Status: WeekMissing}
		case w.Week == "2026-W16":
			want = Week{Status: WeekPending}
		case w.Start >= "2026-03-09":
			want = Week{Status: WeekCovered, Backups: 1, Present: 1, Source: SourcePresent}
		default:
			want = Week{Status: WeekCovered, Backups: 1, Audited: 1, Source: SourceAuditPruned}
		}
		want.Week, want.Start = w.Week, w.Start
		if w != want {
			t.Errorf("offsite week %s = %+v, want %+v", w.Week, w, want)
		}
	}
	drills := r.Jobs[0].Drills
	if len(drills) != 3 || drills[2].TotalSeconds != 3600 || drills[2].RTOSeconds != 28800 || drills[2].OverRTO || drills[2].Result != drill.Passed {
		t.Errorf("drill history = %+v, want 3 drills, the last 3600 s of an RTO of 28800 s, passed", drills)
	}
}

// TestEvaluateTimezone counts weeks in the job's time zone: a backup on
// Monday 00:30 in Auckland is still Sunday in UTC, and belongs to the
// Monday's ISO week.
func TestEvaluateTimezone(t *testing.T) {
	in := clean()
	ji := &in.Jobs[0]
	ji.Job.Timezone = "Pacific/Auckland"
	if err := ji.Job.Resolve(); err != nil {
		t.Fatal(err)
	}
	r := Evaluate(in)
	if got := r.Jobs[0].Timezone; got != "Pacific/Auckland" {
		t.Fatalf("timezone %q", got)
	}
	// Sunday 02:00 UTC is Sunday 14:00 or 15:00 in Auckland: the same
	// weeks, but the window now starts on Monday 2026-01-19 in Auckland.
	weeks := r.Jobs[0].Coverage[0].Weeks
	if weeks[0].Start != "2026-01-19" {
		t.Errorf("first week starts %s in Auckland, want 2026-01-19", weeks[0].Start)
	}
	auck, _ := time.LoadLocation("Pacific/Auckland")
	got := isoWeek(time.Date(2026, 2, 8, 12, 30, 0, 0, time.UTC), auck) // Mon 01:30 NZDT
	if got != "2026-W07" {
		t.Errorf("Sunday 12:30 UTC is %s in Auckland, want 2026-W07", got)
	}
}

// TestEvaluateWindow checks the window's length decides the weeks
// reported, and an empty job list gives an empty, passing report.
func TestEvaluateWindow(t *testing.T) {
	in := clean()
	in.Since = 2 * config.Week
	r := Evaluate(in)
	if n := len(r.Jobs[0].Coverage[0].Weeks); n != 3 {
		t.Errorf("a 2-week window ending on a Wednesday spans %d ISO weeks, want 3", n)
	}
	if r.Since != "14d" || !r.From.Equal(now.Add(-14*config.Day)) {
		t.Errorf("window %s from %s", r.Since, r.From)
	}
	if len(r.Jobs[0].Drills) != 1 {
		t.Errorf("drill history over 2 weeks = %+v, want only the last drill", r.Jobs[0].Drills)
	}
	empty := Evaluate(Input{Now: now, Since: window})
	if !empty.Passed() || len(empty.Jobs) != 0 {
		t.Errorf("report over no jobs: passed %v, %d jobs", empty.Passed(), len(empty.Jobs))
	}
}
