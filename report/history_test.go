package report

import (
	"strings"
	"time"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// Fabricated histories for the tests: job "app" backs up every Sunday at
// 02:00 UTC to primary and offsite, keeps 28 days (min_keep 2) and drills
// from offsite on the 1st of each month.

// now is a Wednesday; the window of 12 weeks then starts on Wednesday
// 2026-01-21, in ISO week 2026-W04 (from Monday 2026-01-19), and the
// current week, 2026-W16, has its backup due on Sunday 2026-04-19.
var now = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

const window = 12 * config.Week

// Two age recipients; keyA is the one configured.
const (
	keyA = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
	keyB = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
	keyC = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"
)

// hexHash is a well-formed SHA-256 for fabricated manifests.
var hexHash = strings.Repeat("ab", 32)

// testJob is the job of every fabricated history.
func testJob() *config.Job {
	j := &config.Job{
		Name:         "app",
		Destinations: []string{"primary", "offsite"},
		Recipients:   []string{keyA},
		Schedule:     "0 2 * * 0",
		Timezone:     "UTC",
		Retention:    config.Retention{KeepWithin: config.Duration(28 * config.Day), MinKeep: 2},
		RTO:          config.Duration(8 * time.Hour),
		Drill: config.Drill{
			Enabled:  true,
			Schedule: "0 4 1 * *",
			From:     "offsite",
			MaxAge:   config.Duration(35 * config.Day),
		},
	}
	if err := j.Resolve(); err != nil {
		panic(err)
	}
	return j
}

// backupID is the id of a backup started at t.
func backupID(t time.Time) string { return t.UTC().Format("20060102T150405.000Z") + "-7f3a" }

// newManifest returns a valid manifest of job's backup started at t, held
// at dests and encrypted to recipients.
func newManifest(job string, t time.Time, dests []string, recipients ...string) *manifest.Manifest {
	id := backupID(t)
	key := manifest.PayloadKey(job, id, "sqlite")
	m := &manifest.Manifest{
		FormatVersion: manifest.FormatVersion,
		ID:            id,
		Job:           job,
		Source:        dumpinfo.Info{Kind: "sqlite", Database: "app.db", Format: "sqlite"},
		Started:       t,
		Finished:      t.Add(time.Minute),
		Plain:         manifest.Digest{Bytes: 1000, SHA256: hexHash},
		Payload:       manifest.Payload{Key: key, Digest: manifest.Digest{Bytes: 400, SHA256: hexHash}, HeaderSHA256: hexHash},
		Compression:   manifest.Compression{Algorithm: "zstd", Level: 3},
		Encryption:    manifest.Encryption{Algorithm: "age", Recipients: recipients},
		CofferVersion: "test",
		Sequence:      t.Unix(),
	}
	for _, d := range dests {
		m.Copies = append(m.Copies, manifest.Copy{Destination: d, Key: key, Bytes: 400, SHA256: hexHash})
	}
	return m
}

// newDrill returns a drill report of job that finished at end after
// took, with the given result.
func newDrill(job string, end time.Time, took time.Duration, result drill.Result) *drill.Report {
	return &drill.Report{
		FormatVersion: drill.ReportFormatVersion,
		ID:            backupID(end.Add(-took)),
		Job:           job,
		Backup:        backupID(end.Add(-took - 2*time.Hour)),
		From:          "offsite",
		Started:       end.Add(-took),
		Finished:      end,
		TotalSeconds:  took.Seconds(),
		RTOSeconds:    (8 * time.Hour).Seconds(),
		Result:        result,
		CofferVersion: "test",

		ManifestVerified: &verified,
		ManifestSignedBy: "k1",
	}
}

// verified is what newDrill's reports record: the manifest's signature
// was verified.
var verified = true

// sundays are the backup times of the clean history: every Sunday at
// 02:00 from 2026-01-25 (2026-W04) to 2026-04-12 (2026-W15).
func sundays() []time.Time {
	var out []time.Time
	for t := time.Date(2026, 1, 25, 2, 0, 0, 0, time.UTC); t.Before(now); t = t.Add(config.Week) {
		out = append(out, t)
	}
	return out
}

// event returns an audit event.
func event(t time.Time, action, id, dest string, outcome audit.Outcome, rule string) audit.Event {
	return audit.Event{ID: t.UTC().Format("20060102T150405.000000000Z") + "-" + dest + "-" + action,
		Time: t, Host: "db1", User: "coffer", Action: action, Job: "app", BackupID: id,
		Destination: dest, Outcome: outcome, Rule: rule}
}

// clean returns a history in which every control passes: a backup every
// Sunday in both destinations (the audit trail records each), pruned
// from both at the first run after it was 28 days old, and a passing
// one-hour drill on the 1st of every month.
func clean() Input {
	job := testJob()
	ji := JobInput{Job: job, Destinations: []DestinationInput{
		{Name: "primary", Role: RolePrimary},
		{Name: "offsite", Role: RoleOffsite},
	}}
	keep := job.Retention.KeepWithin.D()
	for _, t := range sundays() {
		id := backupID(t)
		for i := range ji.Destinations {
			d := &ji.Destinations[i]
			ji.Events = append(ji.Events, event(t.Add(5*time.Minute), audit.ActionBackup, id, d.Name, audit.OutcomeOK, ""))
			// Prune runs after each Sunday backup: the first run after
			// the backup is 28 days old deletes it.
			pruned := t.Add(5*config.Week + 10*time.Minute)
			if t.Add(keep).Before(now) && pruned.Before(now) {
				ji.Events = append(ji.Events, event(pruned, audit.ActionPrune, id, d.Name, "deleted", "expired"))
				continue
			}
			d.Manifests = append(d.Manifests, newManifest("app", t, []string{"primary", "offsite"}, keyA))
		}
	}
	for _, month := range []time.Month{2, 3, 4} {
		ji.Drills = append(ji.Drills, newDrill("app", time.Date(2026, month, 1, 5, 0, 0, 0, time.UTC), time.Hour, drill.Passed))
	}
	return Input{Now: now, Since: window, Jobs: []JobInput{ji}}
}
