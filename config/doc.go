// Package config reads Coffer's configuration file: a YAML file of age
// recipients, destinations and jobs, described in docs/config.md.
//
// Load and Parse guarantee:
//
//   - A *Config they return is complete and valid: every default is
//     applied and every check in docs/config.md has passed, so the code
//     that receives it MUST NOT need to re-check or re-default anything.
//   - Otherwise they return nil and every problem found, not just the
//     first, each a *FieldError naming the file, the line and the field
//     path ("coffer.yaml:12: jobs.app.source.type: unknown source type ...").
//   - Each job's time zone and cron schedules are parsed once, here:
//     Job.Location, Job.BackupSchedule and Job.DrillSchedule return them,
//     and nothing else in Coffer parses them again. A Job built in code
//     (tests) gets them from Job.Resolve.
//   - Unknown keys are errors: a misspelt setting is never silently
//     ignored (top-level keys starting with "x-" are the one exception,
//     there to hold YAML anchors).
//   - Secrets (passwords, S3 keys, exec environment values) are held as
//     Secret, which prints and encodes as "[redacted]"; no error message
//     contains a secret value or a private key.
//   - Secret files and configuration files holding inline secrets are
//     refused when group or others may read them.
//
// They do not guarantee that destinations are reachable, credentials
// valid, databases present or dump tools installed: those are checked when
// they are used.
package config
