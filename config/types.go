package config

import "time"

// Config is a loaded, validated configuration file. Every default has been
// applied: code that receives a *Config never re-checks it.
type Config struct {
	// Path is the file the configuration was loaded from.
	Path string `json:"path"`
	// Recipients are the global age recipients (public keys, "age1...").
	// A job's own recipients replace them.
	Recipients []string `json:"recipients"`
	// Destinations by name, and their names in file order.
	Destinations     map[string]*Destination `json:"destinations"`
	DestinationOrder []string                `json:"-"`
	// Jobs by name, and their names in file order.
	Jobs     map[string]*Job `json:"jobs"`
	JobOrder []string        `json:"-"`
}

// Destination is one place backups go. Type is "s3" or "local".
type Destination struct {
	Name string `json:"name"`
	Type string `json:"type"`

	// S3 (type "s3"). Credentials left empty fall back to the environment
	// and the AWS SDK's default chain.
	Endpoint        string `json:"endpoint,omitempty"` // empty means AWS
	Region          string `json:"region,omitempty"`   // default us-east-1
	Bucket          string `json:"bucket,omitempty"`
	Prefix          string `json:"prefix,omitempty"` // no leading or trailing slash
	PathStyle       bool   `json:"path_style,omitempty"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey Secret `json:"secret_access_key,omitzero"`
	SessionToken    Secret `json:"session_token,omitzero"`

	// Local directory (type "local").
	Path string `json:"path,omitempty"`
}

// Job is one database to protect.
type Job struct {
	Name   string `json:"name"`
	Source Source `json:"source"`
	// Destinations names, in the order restore tries them. Default: all
	// destinations in file order.
	Destinations []string `json:"destinations"`
	// Recipients for this job; default: the global recipients.
	Recipients []string `json:"recipients"`
	// Schedule is a cron spec (5 fields or a descriptor); default "0 2 * * 0".
	Schedule string `json:"schedule"`
	// Timezone is an IANA name; default "UTC".
	Timezone    string      `json:"timezone"`
	Compression Compression `json:"compression"`
	Retention   Retention   `json:"retention"`
	// RTO is the recovery time objective; default 8h.
	RTO Duration `json:"rto"`
}

// Source says how to dump a job's database. Type is "postgres", "mysql"
// (MySQL or MariaDB), "sqlite" or "exec".
type Source struct {
	Type string `json:"type"`

	// postgres and mysql. Host may be a socket directory (postgres).
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	User     string `json:"user,omitempty"`
	Password Secret `json:"password,omitzero"`
	Database string `json:"database,omitempty"`
	// Format for postgres: "custom" (default) or "plain".
	Format string `json:"format,omitempty"`

	// sqlite: the database file.
	Path string `json:"path,omitempty"`

	// exec: argv of a command writing the dump to stdout (no shell), and
	// extra environment for it (values are secrets).
	Command []string          `json:"command,omitempty"`
	Env     map[string]Secret `json:"env,omitempty"`
	// Extension names the dump format of an exec source in the payload key
	// (e.g. "sql"); default "dump".
	Extension string `json:"extension,omitempty"`
}

// Compression settings for the zstd stage.
type Compression struct {
	// Level 1..22 (zstd levels; mapped onto the encoder's speed classes);
	// default 3.
	Level int `json:"level"`
	// Threads compressing zstd frames in parallel; default: the number
	// of CPUs.
	Threads int `json:"threads"`
}

// Retention is a job's retention policy (applied by a later issue).
type Retention struct {
	KeepWithin  Duration `json:"keep_within"`  // default 28d
	MinKeep     int      `json:"min_keep"`     // default 2
	KeepWeekly  int      `json:"keep_weekly"`  // optional
	KeepMonthly int      `json:"keep_monthly"` // optional
	// AllowShort must be true to set keep_within below 28 days.
	AllowShort bool `json:"allow_short,omitempty"`
}

// Duration is a time.Duration that YAML writes as "28d", "8h", "2w", "90m".
type Duration time.Duration
