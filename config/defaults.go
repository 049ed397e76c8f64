package config

import (
	"runtime"
	"time"
)

// Defaults applied by Load and Parse to whatever the file leaves out.
const (
	DefaultRegion           = "us-east-1"
	DefaultSchedule         = "0 2 * * 0" // weekly, Sunday 02:00
	DefaultTimezone         = "UTC"
	DefaultCompressionLevel = 3
	DefaultKeepWithin       = Duration(28 * Day)
	DefaultMinKeep          = 2
	DefaultRTO              = Duration(8 * time.Hour)
	DefaultPostgresPort     = 5432
	DefaultMySQLPort        = 3306
	DefaultPostgresFormat   = "custom"
	DefaultExecExtension    = "dump"
	DefaultListen           = "127.0.0.1:9847"
	DefaultMaxConcurrent    = 1
	DefaultShutdownTimeout  = Duration(30 * time.Second)
	DefaultLeaseTTL         = Duration(2 * time.Minute)
	DefaultLeftoverGrace    = Duration(24 * time.Hour)
	DefaultRepairInterval   = Duration(time.Hour)
	DefaultMaxShrinkPercent = 50
	DefaultStallTimeout     = Duration(5 * time.Minute)
	DefaultDrillSchedule    = "0 4 1 * *" // monthly, the 1st at 04:00
	DefaultDrillWarnPercent = 50
	DefaultDrillMaxAge      = Duration(35 * Day)
)

// DefaultRestoreJobs is restore.jobs unless set: one pg_restore worker per
// CPU, at most 8.
func DefaultRestoreJobs() int { return min(runtime.NumCPU(), 8) }

// newDaemon returns the daemon settings' defaults.
func newDaemon() Daemon {
	return Daemon{
		Listen:          DefaultListen,
		MaxConcurrent:   DefaultMaxConcurrent,
		ShutdownTimeout: DefaultShutdownTimeout,
		LeaseTTL:        DefaultLeaseTTL,
		LeftoverGrace:   DefaultLeftoverGrace,
		RepairInterval:  DefaultRepairInterval,
	}
}

// MinKeepWithin is the shortest keep_within accepted without
// allow_short: true (the four weeks every backup is promised).
const MinKeepWithin = Duration(28 * Day)

// newJob returns a job holding every default that does not depend on the
// rest of the file; decoding then overwrites what the file sets.
func newJob(name string) *Job {
	return &Job{
		Name:        name,
		Schedule:    DefaultSchedule,
		Timezone:    DefaultTimezone,
		Compression: Compression{Level: DefaultCompressionLevel, Threads: runtime.NumCPU()},
		Retention:   Retention{KeepWithin: DefaultKeepWithin, MinKeep: DefaultMinKeep},
		RTO:         DefaultRTO,

		MaxShrinkPercent: DefaultMaxShrinkPercent,
		StallTimeout:     DefaultStallTimeout,
		Drill: Drill{
			Schedule:    DefaultDrillSchedule,
			WarnPercent: DefaultDrillWarnPercent,
			MaxAge:      DefaultDrillMaxAge,
		},
	}
}

// applyDefaults fills in the defaults that depend on other settings. It
// runs after decoding and before validation; has reports whether the file
// set a field path.
func applyDefaults(c *Config, has func(path string) bool) {
	for _, name := range c.DestinationOrder {
		d := c.Destinations[name]
		if d.Type == "s3" && d.Region == "" {
			d.Region = DefaultRegion
		}
	}
	for _, name := range c.JobOrder {
		j := c.Jobs[name]
		p := "jobs." + name
		if !has(p + ".destinations") {
			j.Destinations = append([]string(nil), c.DestinationOrder...)
		}
		if !has(p + ".recipients") {
			j.Recipients = append([]string(nil), c.Recipients...)
		}
		s := &j.Source
		switch s.Type {
		case "postgres":
			if s.Host != "" && !has(p+".source.port") {
				s.Port = DefaultPostgresPort
			}
			if s.Format == "" && !has(p+".source.format") {
				s.Format = DefaultPostgresFormat
			}
		case "mysql":
			if s.Host != "" && !has(p+".source.port") {
				s.Port = DefaultMySQLPort
			}
		case "exec":
			if s.Extension == "" && !has(p+".source.extension") {
				s.Extension = DefaultExecExtension
			}
		}
		applyDrillDefaults(j, p, has)
	}
}

// applyDrillDefaults fills in a job's drill settings that depend on its
// source and destinations; p is the job's path.
func applyDrillDefaults(j *Job, p string, has func(path string) bool) {
	d := &j.Drill
	if !has(p + ".drill.enabled") {
		d.Enabled = j.Source.Type != "exec"
	}
	if d.From == "" && !has(p+".drill.from") && len(j.Destinations) > 0 {
		d.From = j.Destinations[len(j.Destinations)-1]
	}
	t, s := &d.Target, j.Source
	if !has(p + ".drill.target.host") {
		t.Host = s.Host
	}
	if !has(p+".drill.target.port") && t.Host == s.Host {
		t.Port = s.Port
	}
	if !has(p + ".drill.target.user") {
		t.User = s.User
	}
	if t.Password.IsZero() && !has(p+".drill.target.password") && !has(p+".drill.target.password_file") {
		t.Password = s.Password
	}
}
