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
	// Daemon configures `coffer run` and the state every command keeps.
	Daemon Daemon `json:"daemon"`
	// Notify says where failures (and optionally successes) are reported.
	Notify Notify `json:"notify"`
	// Signing names the key backups sign manifests with and the keys
	// readers trust (see signing.go).
	Signing Signing `json:"signing"`
	// Restore tunes restores and drills on this host.
	Restore Restore `json:"restore"`
}

// Restore tunes how `coffer restore` and drills load a backup.
type Restore struct {
	// Jobs is the number of pg_restore workers for a PostgreSQL
	// custom-format backup (1 streams it into one pg_restore, without a
	// spool file); default one per CPU, at most 8.
	Jobs int `json:"jobs"`
	// SpoolDir is where a parallel restore writes the dump for pg_restore
	// to read (it needs room for the dump's plain size); default the
	// system's temporary directory ($TMPDIR or /tmp).
	SpoolDir string `json:"spool_dir,omitempty"`
}

// Daemon configures the scheduler, its HTTP endpoint and local state.
type Daemon struct {
	// Listen is the host:port of /healthz, /readyz and /metrics; default
	// 127.0.0.1:9847. "off" disables the endpoint.
	Listen string `json:"listen"`
	// Token, when set, must be sent as "Authorization: Bearer TOKEN".
	Token Secret `json:"token,omitzero"`
	// Allow lists the client networks (CIDRs) that may connect; default:
	// any client that can reach Listen.
	Allow []string `json:"allow,omitempty"`
	// MaxConcurrent is how many different jobs may run at once; default 1.
	MaxConcurrent int `json:"max_concurrent"`
	// StateDir holds the audit log and other local state; default
	// $STATE_DIRECTORY, /var/lib/coffer as root, or ~/.local/state/coffer.
	StateDir string `json:"state_dir,omitempty"`
	// ShutdownTimeout bounds how long SIGTERM waits for running jobs to
	// abort; default 30s.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// HA makes daemons sharing a config take a lease in the first
	// destination before each run, so each slot is backed up once.
	HA bool `json:"ha"`
	// LeaseTTL is how long a lease lasts without renewal; default 2m.
	LeaseTTL Duration `json:"lease_ttl"`
	// LeftoverGrace is how old an unfinished upload or a payload without
	// a manifest must be before it is swept; default 24h.
	LeftoverGrace Duration `json:"leftover_grace"`
	// RepairInterval is how often backups missing from a destination are
	// looked for and copied there; default 1h.
	RepairInterval Duration `json:"repair_interval"`
}

// Notify lists where run results are sent. URLs are secrets (a Slack or
// webhook URL is a credential).
type Notify struct {
	// OnSuccess also sends successful runs; failures and partial runs are
	// always sent.
	OnSuccess bool `json:"on_success"`
	// Webhooks receive a JSON object per event (POST).
	Webhooks []Secret `json:"webhooks,omitempty"`
	// Slack receives Slack-compatible {"text": ...} messages (POST).
	Slack []Secret `json:"slack,omitempty"`
	// InsecureHTTP allows http:// webhook and Slack URLs: the events and
	// the URLs' tokens then travel unencrypted. Without it they must be
	// https://. For local test receivers only.
	InsecureHTTP bool `json:"insecure_http,omitempty"`
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
	// CAFile is a PEM bundle of CA certificates trusted for this
	// destination's https endpoint, in addition to the system roots (and
	// $AWS_CA_BUNDLE). Absolute: a relative ca_file is resolved against
	// the configuration file's directory at load. Certificates are always
	// verified and TLS is 1.2 or newer.
	CAFile string `json:"ca_file,omitempty"`
	// InsecureHTTP allows an http:// endpoint: credentials and backups
	// then travel unencrypted. For local test servers only; it does not
	// turn certificate checks off.
	InsecureHTTP bool `json:"insecure_http,omitempty"`

	// ObjectLock, when set, makes every upload carry an Object Lock
	// retention date (backup time + the job's keep_within). The bucket
	// must have been created with object locking.
	ObjectLock *ObjectLock `json:"object_lock,omitempty"`

	// Local directory (type "local").
	Path string `json:"path,omitempty"`
}

// ObjectLock is a destination's S3 Object Lock setting.
type ObjectLock struct {
	// Mode is "governance" (privileged users may still delete) or
	// "compliance" (nobody can, until the date passes).
	Mode string `json:"mode"`
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
	// MaxShrinkPercent fails a backup whose dump is more than this much
	// smaller than the previous backup's (a broken or emptied source must
	// not pass as a good backup); 100 turns the check off. An empty dump
	// always fails. Default 50.
	MaxShrinkPercent int `json:"max_shrink_percent"`
	// StallTimeout drops a destination that accepts no data for this long
	// during a backup (a black-holed connection); the other destinations
	// go on. Default 5m.
	StallTimeout Duration `json:"stall_timeout"`
	// PingURL is a healthchecks-style check URL: the daemon requests
	// URL/start before a run, URL after a success and URL/fail after a
	// failure or partial run.
	PingURL Secret `json:"ping_url,omitzero"`
	// PingInsecureHTTP allows an http:// PingURL (which then travels
	// unencrypted, token and all); without it the URL must be https://.
	PingInsecureHTTP bool `json:"ping_insecure_http,omitempty"`
	// Drill configures the job's timed test restores.
	Drill Drill `json:"drill"`
	// ProtectedSince is the day (in Timezone) from which the compliance
	// report judges the job's weeks even when nothing of them is known,
	// so that deleting every backup cannot make the job look new. Unset,
	// the job is judged from its first known backup or audit event; set,
	// the earlier of the date and those wins.
	ProtectedSince Date `json:"protected_since,omitzero"`

	// times are Timezone, Schedule and Drill.Schedule parsed, set by
	// validation (see Location, BackupSchedule, DrillSchedule).
	times *jobTimes
}

// Drill configures a job's restore drills: the newest backup restored
// into a scratch database, checked, timed against the RTO and dropped.
type Drill struct {
	// Enabled runs drills on Schedule in the daemon; default true, except
	// for exec sources (which have no loader).
	Enabled bool `json:"enabled"`
	// Schedule is a cron spec in the job's timezone; default "0 4 1 * *"
	// (monthly, the 1st at 04:00).
	Schedule string `json:"schedule"`
	// From is the destination drilled from; default the job's last
	// destination, the offsite copy a disaster leaves.
	From string `json:"from"`
	// Target is the server scratch databases are created on (postgres,
	// mysql) or the directory scratch files go in (sqlite). Unset fields
	// default to the job's source server.
	Target DrillTarget `json:"target"`
	// IdentityFile is the age identity scheduled drills decrypt with (a
	// private key: keep it on restore and drill hosts, not on hosts that
	// only back up). `coffer drill --identity` overrides it.
	IdentityFile string `json:"identity_file,omitempty"`
	// PassphraseFile holds the passphrase of a passphrase-protected
	// IdentityFile.
	PassphraseFile string `json:"passphrase_file,omitempty"`
	// Checks are extra SQL queries run against the restored data.
	Checks []DrillCheck `json:"checks,omitempty"`
	// WarnPercent of the RTO above which a passing drill still alerts;
	// default 50.
	WarnPercent int `json:"warn_percent"`
	// MaxAge is how old the last passing drill may be before the
	// compliance report fails its drill control; default 35d.
	MaxAge Duration `json:"max_age"`
}

// DrillTarget is where a drill restores to.
type DrillTarget struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	User     string `json:"user,omitempty"`
	Password Secret `json:"password,omitzero"`
	// Dir holds scratch SQLite files; default the system temp directory.
	Dir string `json:"dir,omitempty"`
}

// DrillCheck is one user check: Query's first column of its first row,
// as text, must satisfy Expect.
type DrillCheck struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Expect is "> 0", ">= 10", "< 5", "<= 5", "= 42", "!= 0" (numeric
	// comparisons) or any other text, which must equal the result.
	Expect string `json:"expect"`
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

// Retention is a job's retention policy, applied per destination by
// coffer prune and by the daemon after each successful backup.
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
