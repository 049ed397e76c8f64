package backup

import "github.com/coffer-backup/coffer/audit"

// AuditEvents are the audit events of one backup run, from what Run
// returned: one per destination, or one for a run that reached none.
func AuditEvents(job string, res *Result, err error) []audit.Event {
	if res == nil || len(res.Destinations) == 0 {
		detail := "no destination reached"
		if err != nil {
			detail = err.Error()
		}
		return []audit.Event{{Action: audit.ActionBackup, Job: job, Outcome: audit.OutcomeFailed, Detail: detail}}
	}
	var evs []audit.Event
	for _, d := range res.Destinations {
		ev := audit.Event{Action: audit.ActionBackup, Job: job, BackupID: res.ID, Destination: d.Name, Outcome: audit.OutcomeOK, Detail: string(res.Outcome)}
		if d.Err != nil {
			ev.Outcome, ev.Detail = audit.OutcomeFailed, d.Err.Error()
		}
		evs = append(evs, ev)
	}
	return evs
}
