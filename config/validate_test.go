package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid configuration (once fill puts a recipient for @R@), one
// setting a line:
//
//	1 recipients: [@R@]
//	2 destinations:
//	3   d: {type: local, path: /b}
//	4 jobs:
//	5   app:
//	6     source: {type: postgres, database: app}
const base = `recipients: [@R@]
destinations:
  d: {type: local, path: /b}
jobs:
  app:
    source: {type: postgres, database: app}
`

// edits change base by line number: line n is replaced by edits[n], which
// may be several lines, or none ("" deletes the line); edits[7] is added
// after the last line.
type edits map[int]string

// patch returns base changed by e, so that a bad configuration shows only
// what it breaks, and a want's line number can be read off base's.
func patch(e edits) string {
	lines := strings.SplitAfter(base, "\n") // 6 lines and "", the end
	for n, text := range e {
		if n < 1 || n > len(lines) {
			panic(fmt.Sprintf("patch: base has no line %d", n))
		}
		lines[n-1] = text
		if text != "" {
			lines[n-1] += "\n"
		}
	}
	return strings.Join(lines, "")
}

// A bad configuration and the problems it must produce. In src, @R@ stands
// for a valid recipient and @DIR@ for a directory holding:
//
//	open.txt   a secret file of mode 0644
//	closed.txt a secret file of mode 0600
//	empty.txt  an empty secret file of mode 0600
//
// Each want is a substring of the error, normally "file:line: field: message"
// so the line and the field path are checked too.
var badConfigs = []struct {
	name     string
	src      string
	want     []string
	dontWant []string // must not appear in the message (secrets)
}{
	{
		name: "YAML syntax error",
		src:  "recipients: [@R@]\ndestinations:\n  d: {type: local, path: /b\njobs: {}\n",
		want: []string{"coffer.yaml:3: YAML syntax: did not find expected ',' or '}'"},
	},
	{
		name: "YAML syntax error on line 1",
		src:  "recipients: a: b\n",
		want: []string{"coffer.yaml:1: YAML syntax: mapping values are not allowed in this context"},
	},
	{
		name: "bad indentation",
		src:  "recipients: [@R@]\ndestinations:\n  d:\n    type: local\n   path: /b\n",
		want: []string{"coffer.yaml:3: YAML syntax: did not find expected key"},
	},
	{
		name: "unknown anchor",
		src:  "recipients: *keys\n",
		want: []string{"coffer.yaml: YAML syntax: unknown anchor 'keys' referenced"},
	},
	{
		name: "tab indentation",
		src:  "recipients: [@R@]\ndestinations:\n\td: {type: local, path: /b}\n",
		want: []string{"coffer.yaml:3: YAML syntax: found character that cannot start any token"},
	},
	{
		name: "empty file",
		src:  "# nothing here\n",
		want: []string{"coffer.yaml: the file is empty"},
	},
	{
		name: "two documents",
		src:  "recipients: [@R@]\n---\njobs: {}\n",
		want: []string{"coffer.yaml:2: a second YAML document"},
	},
	{
		name: "top level is a list",
		src:  "- a\n- b\n",
		want: []string{"coffer.yaml: want a mapping with recipients, destinations and jobs, got a list"},
	},
	{
		name: "destinations is a list",
		src:  patch(edits{2: "destinations: [primary]", 3: ""}),
		want: []string{"coffer.yaml:2: destinations: want a mapping of destination names to settings, got a list"},
	},
	{
		name: "recipients is a string",
		src:  patch(edits{1: "recipients: @R@"}),
		want: []string{"coffer.yaml:1: recipients: want a list, got a string"},
	},
	{
		name: "unknown top-level key",
		src:  patch(edits{2: "destinatons:"}),
		want: []string{
			"coffer.yaml:2: destinatons: unknown key; did you mean destinations?",
			"coffer.yaml: destinations: at least one destination is required",
		},
	},
	{
		name: "unknown destination key",
		src: patch(edits{3: `  primary:
    type: s3
    bucket: b1
    secret_key: x`}),
		want: []string{"coffer.yaml:6: destinations.primary.secret_key: unknown key (want one of: type, endpoint,"},
	},
	{
		name: "unknown job key",
		src:  patch(edits{7: `    schedul: "@daily"`}),
		want: []string{"coffer.yaml:7: jobs.app.schedul: unknown key; did you mean schedule?"},
	},
	{
		name: "unknown source key",
		src: patch(edits{6: `    source:
      type: postgres
      databse: app`}),
		want: []string{
			"coffer.yaml:8: jobs.app.source.databse: unknown key; did you mean database?",
			"coffer.yaml:6: jobs.app.source.database: required for postgres sources",
		},
	},
	{
		name: "unknown retention key",
		src:  patch(edits{7: "    retention: {keep_days: 30}"}),
		want: []string{"coffer.yaml:7: jobs.app.retention.keep_days: unknown key"},
	},
	{
		name: "duplicate key",
		src: patch(edits{3: `  d: {type: local, path: /b}
  d: {type: local, path: /c}`}),
		want: []string{"coffer.yaml:4: destinations.d: duplicate key (first at line 3)"},
	},
	{
		name: "unknown destination reference",
		src: patch(edits{3: "  primary: {type: s3, bucket: b1}", 7: `    destinations:
      - primary
      - ofsite`}),
		want: []string{`coffer.yaml:9: jobs.app.destinations[1]: unknown destination "ofsite" (have: primary)`},
	},
	{
		name: "destination listed twice",
		src:  patch(edits{3: "  primary: {type: s3, bucket: b1}", 7: "    destinations: [primary, primary]"}),
		want: []string{`coffer.yaml:7: jobs.app.destinations[1]: destination "primary" is listed twice`},
	},
	{
		name: "same bucket and prefix twice",
		src: patch(edits{3: `  primary: {type: s3, endpoint: "https://s3.example.com", bucket: b1, prefix: db}
  offsite: {type: s3, endpoint: "https://S3.example.com/", bucket: b1, prefix: db}`}),
		want: []string{`coffer.yaml:4: destinations.offsite: same place as destination "primary" (line 3); primary and offsite must differ`},
	},
	{
		name: "nested prefixes in one bucket",
		src: patch(edits{3: `  primary: {type: s3, bucket: b1}
  offsite: {type: s3, bucket: b1, prefix: copy}`}),
		want: []string{`coffer.yaml:4: destinations.offsite: overlaps destination "primary" (line 3)`},
	},
	{
		name: "same local path",
		src: patch(edits{3: `  a: {type: local, path: /backups}
  b: {type: local, path: /backups/}`}),
		want: []string{`coffer.yaml:4: destinations.b: same place as destination "a" (line 3); primary and offsite must differ`},
	},
	{
		name: "private key as recipient",
		src: patch(edits{1: `recipients:
  - @R@
  - ` + testPrivateKey}),
		want: []string{"coffer.yaml:3: recipients[1]: this is a private key; put its public key (age-keygen -y) here"},
	},
	{
		name: "private key as job recipient",
		src:  patch(edits{7: "    recipients: [" + testPrivateKey + "]"}),
		want: []string{"coffer.yaml:7: jobs.app.recipients[0]: this is a private key"},
	},
	{
		name: "not a recipient",
		src:  patch(edits{1: "recipients: [alice@example.com, age1notakey]"}),
		want: []string{
			"coffer.yaml:1: recipients[0]: not an age recipient",
			"coffer.yaml:1: recipients[1]: invalid age recipient",
		},
	},
	{
		name: "no recipients",
		src:  patch(edits{1: ""}),
		want: []string{"coffer.yaml:4: jobs.app.recipients: no recipients: set recipients at the top level or in the job"},
	},
	{
		name: "empty job recipients",
		src:  patch(edits{7: "    recipients: []"}),
		want: []string{"coffer.yaml:7: jobs.app.recipients: no recipients"},
	},
	{
		name: "retention below 28d without allow_short",
		src: patch(edits{7: `    retention:
      keep_within: 7d`}),
		want: []string{"coffer.yaml:8: jobs.app.retention.keep_within: 7d is shorter than the 28d minimum every backup is promised; set retention.allow_short: true to allow it"},
	},
	{
		name: "min_keep 0",
		src:  patch(edits{7: "    retention: {min_keep: 0, keep_weekly: -1}"}),
		want: []string{
			"coffer.yaml:7: jobs.app.retention.min_keep: want at least 1",
			"coffer.yaml:7: jobs.app.retention.keep_weekly: must not be negative",
		},
	},
	{
		name: "invalid cron",
		src:  patch(edits{7: `    schedule: "0 2 * *"`}),
		want: []string{`coffer.yaml:7: jobs.app.schedule: invalid schedule "0 2 * *": expected 5 to 6 fields, found 4`},
	},
	{
		name: "restore settings out of range",
		src: patch(edits{7: `restore:
  jobs: 0
  spool_dir: tmp/spool`}),
		want: []string{
			"coffer.yaml:8: restore.jobs: want 1 to 64 pg_restore workers, got 0",
			`coffer.yaml:9: restore.spool_dir: must be an absolute path, got "tmp/spool"`,
		},
	},
	{
		name: "cron with seconds and a year",
		src:  patch(edits{7: `    schedule: "0 0 2 * * 0 2027"`}),
		want: []string{`coffer.yaml:7: jobs.app.schedule: invalid schedule`},
	},
	{
		name: "daemon settings out of range",
		src: patch(edits{3: `  d: {type: local, path: /b, object_lock: {mode: governance}}
  s: {type: s3, bucket: b, object_lock: {mode: forever}}`, 7: `    ping_url: "ftp://hc.example/x"
    max_shrink_percent: 0
daemon:
  listen: ":9847"
  allow: [10.0.0.0/33, 127.0.0.1/32]
  max_concurrent: 0
  state_dir: relative/dir
  lease_ttl: 1s
  leftover_grace: 0s
  shutdown_timeout: 0s
  bogus: 1
notify:
  webhooks: ["not a url"]
  slack: ["https://hooks.slack.example/T0/B0/secret"]`}),
		want: []string{
			"coffer.yaml:3: destinations.d.object_lock: not used by local destinations",
			`coffer.yaml:4: destinations.s.object_lock.mode: want governance or compliance, got "forever"`,
			"coffer.yaml:8: jobs.app.ping_url: want an https:// URL",
			"coffer.yaml:9: jobs.app.max_shrink_percent: 0 is out of range (want 1 to 100; 100 turns the check off)",
			`coffer.yaml:11: daemon.listen: name the address to listen on, such as 127.0.0.1:9847`,
			`coffer.yaml:12: daemon.allow[0]: want a network such as 10.0.0.0/8 or 127.0.0.1/32, got "10.0.0.0/33"`,
			"coffer.yaml:13: daemon.max_concurrent: want at least 1",
			`coffer.yaml:14: daemon.state_dir: must be an absolute path, got "relative/dir"`,
			"coffer.yaml:15: daemon.lease_ttl: 1s is too short (want at least 5s)",
			"coffer.yaml:16: daemon.leftover_grace: 0s is too short (want at least 1s)",
			"coffer.yaml:17: daemon.shutdown_timeout: 0s is too short (want at least 1s)",
			"coffer.yaml:18: daemon.bogus: unknown key",
			"coffer.yaml:20: notify.webhooks[0]: want an https:// URL",
		},
		dontWant: []string{"hooks.slack.example", "hc.example"},
	},
	{
		name: "plain http notification URLs",
		src: patch(edits{7: `    ping_url: http://hc.example/ping/tok-123456
  other:
    source: {type: postgres, database: other}
    ping_url: https://hc.example/ping/tok-abcdef
    ping_insecure_http: true
notify:
  webhooks: ["https://hooks.example/ok", "http://hooks.example/hook-token-1"]
  slack:
    - http://hooks.slack.example/T0/B0/secret`}),
		want: []string{
			"coffer.yaml:7: jobs.app.ping_url: http:// sends the notification and the URL's token unencrypted; use https://, or set jobs.app.ping_insecure_http: true",
			"coffer.yaml:11: jobs.other.ping_insecure_http: only allows an http:// ping_url and this job has none; remove it",
			"coffer.yaml:13: notify.webhooks[1]: http:// sends the notification and the URL's token unencrypted; use https://, or set notify.insecure_http: true",
			"coffer.yaml:15: notify.slack[0]: http:// sends",
		},
		dontWant: []string{"hooks.slack.example", "hc.example", "hook-token-1", "tok-123456"},
	},
	{
		name: "notify.insecure_http with https URLs only",
		src: patch(edits{7: `notify:
  webhooks: ["https://hooks.example/ok"]
  insecure_http: true`}),
		want: []string{"coffer.yaml:9: notify.insecure_http: only allows http:// webhook and slack URLs and none is one; remove it"},
	},
	{
		name: "time zone in the schedule",
		src:  patch(edits{7: `    schedule: "CRON_TZ=Europe/Berlin 0 2 * * 0"`}),
		want: []string{"coffer.yaml:7: jobs.app.schedule: set the time zone with the job's timezone key"},
	},
	{
		name: "every second",
		src:  patch(edits{7: `    schedule: "@every 10s"`}),
		want: []string{"coffer.yaml:7: jobs.app.schedule: runs every 10s; the shortest interval is 1m"},
	},
	{
		name: "invalid timezone",
		src:  patch(edits{7: "    timezone: Mars/Olympus_Mons"}),
		want: []string{`coffer.yaml:7: jobs.app.timezone: unknown time zone "Mars/Olympus_Mons"`},
	},
	{
		name: "protected_since not a date",
		src:  patch(edits{7: "    protected_since: 30/11/2026"}),
		want: []string{`coffer.yaml:7: jobs.app.protected_since: invalid date "30/11/2026" (want YYYY-MM-DD, such as 2026-11-30)`},
	},
	{
		name: "protected_since with a time of day",
		src:  patch(edits{7: "    protected_since: 2026-11-30T08:00:00Z"}),
		want: []string{`coffer.yaml:7: jobs.app.protected_since: invalid date "2026-11-30T08:00:00Z" (want YYYY-MM-DD`},
	},
	{
		name: "protected_since on a day that does not exist",
		src:  patch(edits{7: `    protected_since: "2026-02-30"`}),
		want: []string{`coffer.yaml:7: jobs.app.protected_since: invalid date "2026-02-30"`},
	},
	{
		name: "protected_since a list",
		src:  patch(edits{7: "    protected_since: [2026-11-30]"}),
		want: []string{"coffer.yaml:7: jobs.app.protected_since: want a string, got a list"},
	},
	{
		name: "unknown source type",
		src: patch(edits{6: `    source:
      type: postgress
      database: app`}),
		want: []string{`coffer.yaml:7: jobs.app.source.type: unknown source type "postgress" (want postgres, mysql, sqlite, exec)`},
	},
	{
		name: "no source",
		src:  patch(edits{6: `    schedule: "@daily"`}),
		want: []string{"coffer.yaml:5: jobs.app.source.type: required (want postgres, mysql, sqlite, exec)"},
	},
	{
		name: "missing database",
		src: patch(edits{6: `    source:
      type: mysql
      host: db`}),
		want: []string{"coffer.yaml:6: jobs.app.source.database: required for mysql sources"},
	},
	{
		name: "postgres format",
		src:  patch(edits{6: "    source: {type: postgres, database: app, format: directory}"}),
		want: []string{`coffer.yaml:6: jobs.app.source.format: unknown postgres format "directory" (want custom, plain)`},
	},
	{
		name: "sqlite without path, with a host",
		src: patch(edits{6: `    source:
      type: sqlite
      host: db`}),
		want: []string{
			"coffer.yaml:6: jobs.app.source.path: required for sqlite sources",
			"coffer.yaml:8: jobs.app.source.host: not used by sqlite sources",
		},
	},
	{
		name: "exec without command",
		src:  patch(edits{6: "    source: {type: exec, extension: SQL}"}),
		want: []string{
			"coffer.yaml:6: jobs.app.source.command: required for exec sources",
			"coffer.yaml:6: jobs.app.source.extension: want 1 to 16 lower-case letters or digits",
		},
	},
	{
		name: "port is a quoted string",
		src:  patch(edits{6: `    source: {type: postgres, host: db, database: app, port: "5432"}`}),
		want: []string{`coffer.yaml:6: jobs.app.source.port: want a whole number, got a string "5432"`},
	},
	{
		name: "port out of range",
		src:  patch(edits{6: "    source: {type: postgres, host: db, database: app, port: 70000}"}),
		want: []string{`coffer.yaml:6: jobs.app.source.port: 70000 is out of range (want 1 to 65535)`},
	},
	{
		name: "compression level 0",
		src: patch(edits{7: `    compression:
      level: 0
      threads: 0`}),
		want: []string{
			"coffer.yaml:8: jobs.app.compression.level: 0 is out of range (want 1 to 22)",
			"coffer.yaml:9: jobs.app.compression.threads: want at least 1",
		},
	},
	{
		name: "compression level 23",
		src:  patch(edits{7: "    compression: {level: 23}"}),
		want: []string{"coffer.yaml:7: jobs.app.compression.level: 23 is out of range (want 1 to 22)"},
	},
	{
		name: "compression is a number",
		src:  patch(edits{7: "    compression: 19"}),
		want: []string{"coffer.yaml:7: jobs.app.compression: want a mapping with level and threads, got a number"},
	},
	{
		name: "missing bucket",
		src: patch(edits{3: `  primary:
    type: s3
    region: eu-west-1`}),
		want: []string{"coffer.yaml:3: destinations.primary.bucket: required for s3 destinations"},
	},
	{
		name: "prefix with slashes",
		src:  patch(edits{3: "  primary: {type: s3, bucket: b1, prefix: /prod/}"}),
		want: []string{`coffer.yaml:3: destinations.primary.prefix: must not start or end with / (write "prod")`},
	},
	{
		name: "endpoint without scheme",
		src:  patch(edits{3: "  primary: {type: s3, bucket: b1, endpoint: s3.example.com}"}),
		want: []string{`coffer.yaml:3: destinations.primary.endpoint: want a URL such as https://s3.example.com`},
	},
	{
		name: "path_style yes",
		src:  patch(edits{3: "  primary: {type: s3, bucket: b1, path_style: yes}"}),
		want: []string{`coffer.yaml:3: destinations.primary.path_style: want true or false, got a string "yes"`},
	},
	{
		name: "access key without secret",
		src:  patch(edits{3: "  primary: {type: s3, bucket: b1, access_key_id: AKIA}"}),
		want: []string{"coffer.yaml:3: destinations.primary.access_key_id: set without secret_access_key"},
	},
	{
		name: "relative local path",
		src: patch(edits{3: `  d:
    type: local
    path: backups`}),
		want: []string{`coffer.yaml:5: destinations.d.path: must be an absolute path, got "backups"`},
	},
	{
		name: "s3 key on a local destination",
		src: patch(edits{3: `  d:
    type: local
    path: /b
    bucket: b1`}),
		want: []string{"coffer.yaml:6: destinations.d.bucket: not used by local destinations"},
	},
	{
		name: "unknown destination type",
		src:  patch(edits{3: "  d: {type: gcs, bucket: b1}"}),
		want: []string{`coffer.yaml:3: destinations.d.type: unknown destination type "gcs" (want s3, local)`},
	},
	{
		name: "bad job and destination names",
		src:  patch(edits{3: "  Primary: {type: local, path: /b}", 5: "  my app:"}),
		want: []string{
			`coffer.yaml:3: destinations.Primary: invalid destination name "Primary"`,
			`coffer.yaml:5: jobs.my app: invalid job name "my app": want lower-case letters, digits, _ and -`,
		},
	},
	{
		name: "unset variable",
		src: patch(edits{6: `    source:
      type: postgres
      database: app
      password: ${COFFER_TEST_UNSET}`}),
		want: []string{"coffer.yaml:9: jobs.app.source.password: environment variable COFFER_TEST_UNSET is not set"},
	},
	{
		name: "malformed reference",
		src:  patch(edits{3: `  d: {type: local, path: "${COFFER TEST}"}`}),
		want: []string{"coffer.yaml:3: destinations.d.path: malformed ${...} reference"},
	},
	{
		name: "password and password_file",
		src: patch(edits{6: `    source:
      type: postgres
      database: app
      password: hunter2
      password_file: @DIR@/closed.txt`}),
		want: []string{"coffer.yaml:10: jobs.app.source.password_file: both password and password_file are set; keep one"},
	},
	{
		name: "unreadable password_file",
		src: patch(edits{6: `    source:
      type: postgres
      database: app
      password_file: @DIR@/missing.txt`}),
		want: []string{"coffer.yaml:9: jobs.app.source.password_file: cannot read secret file: open @DIR@/missing.txt: no such file or directory"},
	},
	{
		name: "world-readable secret file",
		src: patch(edits{3: `  d:
    type: s3
    bucket: b1
    access_key_id: AKIA
    secret_access_key_file: @DIR@/open.txt`}),
		want: []string{"coffer.yaml:7: destinations.d.secret_access_key_file: secret file @DIR@/open.txt is readable by group or others (mode 0644); fix: chmod 600 @DIR@/open.txt"},
	},
	{
		name: "empty secret file",
		src:  patch(edits{6: `    source: {type: postgres, database: app, password_file: "@DIR@/empty.txt"}`}),
		want: []string{"coffer.yaml:6: jobs.app.source.password_file: secret file @DIR@/empty.txt is empty"},
	},
	{
		name: "private key as signing public key",
		src: patch(edits{1: `recipients: [@R@]
signing:
  public_keys:
    - "-----BEGIN PRIVATE KEY-----"
    - ` + testPrivateKey}),
		want: []string{
			"coffer.yaml:4: signing.public_keys[0]: this is a private key; put its public key (coffer-sign1:..., printed by coffer keygen --signing-key) here",
			"coffer.yaml:5: signing.public_keys[1]: this is a private key",
		},
	},
	{
		name: "bad signing public keys",
		src: patch(edits{1: `recipients: [@R@]
signing:
  public_keys: [coffer-sign1:AAAA, @R@, ssh-ed25519 AAAA, @P@, @P@]`}),
		want: []string{
			"coffer.yaml:3: signing.public_keys[0]: malformed signing public key: want coffer-sign1: and the base64 of 32 bytes",
			"coffer.yaml:3: signing.public_keys[1]: this is an age recipient (an encryption key); a signing public key looks like coffer-sign1:<base64>",
			"coffer.yaml:3: signing.public_keys[2]: not a Coffer signing public key",
			"coffer.yaml:3: signing.public_keys[4]: key @PID@ is listed twice",
		},
	},
	{
		name: "world-readable signing key",
		src: patch(edits{1: `recipients: [@R@]
signing:
  key_file: @DIR@/signing-open.key
  public_keys: [@S@]`}),
		want: []string{"coffer.yaml:3: signing.key_file: signing key: @DIR@/signing-open.key has mode 0644 and is accessible to other users; fix with: chmod 600 @DIR@/signing-open.key"},
	},
	{
		name: "signing key not trusted",
		src: patch(edits{1: `recipients: [@R@]
signing:
  key_file: @DIR@/signing.key
  public_keys: [@P@]`}),
		want: []string{"coffer.yaml:3: signing.key_file: its public key @S@ (id @SID@) is not among signing.public_keys: the backups it signs would be refused; add it"},
	},
	{
		name: "missing signing key, nothing trusted",
		src: patch(edits{1: `recipients: [@R@]
signing: {key_file: @DIR@/missing.key}`}),
		want: []string{"coffer.yaml:2: signing.key_file: @DIR@/missing.key does not exist; create it with `coffer keygen --signing-key @DIR@/missing.key`"},
	},
	{
		name: "signing key file is not a key",
		src: patch(edits{1: `recipients: [@R@]
signing: {key_file: @DIR@/closed.txt}`}),
		want: []string{"coffer.yaml:2: signing.key_file: signing key @DIR@/closed.txt: not a signing key file: no PEM block"},
	},
	{
		name: "signing section misspelt",
		src: patch(edits{1: `recipients: [@R@]
signing:
  keyfile: /etc/coffer/signing.key
  public_key: [@P@]`}),
		want: []string{
			"coffer.yaml:3: signing.keyfile: unknown key; did you mean key_file?",
			"coffer.yaml:4: signing.public_key: unknown key; did you mean public_keys?",
		},
	},
	{
		name: "signing is a list",
		src: patch(edits{1: `recipients: [@R@]
signing: [@P@]`}),
		want: []string{"coffer.yaml:2: signing: want a mapping with key_file and public_keys, got a list"},
	},
	{
		name: "no jobs",
		src:  patch(edits{5: "", 6: ""}),
		want: []string{"coffer.yaml: jobs: at least one job is required"},
	},
	{
		name: "no destinations",
		src:  patch(edits{2: "", 3: ""}),
		want: []string{"coffer.yaml: destinations: at least one destination is required"},
	},
	{
		name: "drill from unknown destination",
		src:  patch(edits{7: "    drill: {from: offsite}"}),
		want: []string{`coffer.yaml:7: jobs.app.drill.from: destination "offsite" is not one of the job's destinations (d)`},
	},
	{
		name: "drill check bad expect",
		src: patch(edits{7: `    drill:
      checks:
        - {name: pupils, query: SELECT 1, expect: "> lots"}
        - {name: pupils, query: "", expect: "= 1"}`}),
		want: []string{
			`coffer.yaml:9: jobs.app.drill.checks[0].expect: "> lots": after ">" want a number, got "lots"`,
			`coffer.yaml:10: jobs.app.drill.checks[1].name: "pupils" is used by another check`,
			`coffer.yaml:10: jobs.app.drill.checks[1].query: is required`,
		},
	},
	{
		name: "drill on exec source",
		src: patch(edits{6: `    source: {type: exec, command: [cat, x]}
    drill: {enabled: true, warn_percent: 0, schedule: "61 * * * *"}`}),
		want: []string{
			"coffer.yaml:7: jobs.app.drill.enabled: exec sources cannot be drilled",
			"coffer.yaml:7: jobs.app.drill.warn_percent: 0 is out of range (want 1 to 100)",
			"coffer.yaml:7: jobs.app.drill.schedule:",
		},
	},
	{
		name: "drill unknown key",
		src:  patch(edits{7: `    drill: {shedule: "@monthly"}`}),
		want: []string{`coffer.yaml:7: jobs.app.drill.shedule: unknown key`},
	},
	{
		name: "rto 0",
		src:  patch(edits{7: "    rto: 0"}),
		want: []string{"coffer.yaml:7: jobs.app.rto: must be positive, such as 8h"},
	},
	{
		name: "rto negative",
		src:  patch(edits{7: "    rto: -2h"}),
		want: []string{"coffer.yaml:7: jobs.app.rto: must be positive"},
	},
	{
		name: "bad duration",
		src: patch(edits{7: `    retention:
      keep_within: 4 weeks`}),
		want: []string{`coffer.yaml:8: jobs.app.retention.keep_within: invalid duration "4 weeks" (want a number and a unit, like 28d, 2w, 8h, 90m or 1h30m)`},
	},
	{
		name: "duration without unit",
		src:  patch(edits{7: "    rto: 8"}),
		want: []string{`coffer.yaml:7: jobs.app.rto: invalid duration "8"`},
	},
	{
		name: "many problems at once",
		src: patch(edits{3: "  primary: {type: s3}", 6: `    source: {type: postgress}
    compression: {level: 0}
    rto: 0s`}),
		want: []string{
			"coffer.yaml:3: destinations.primary.bucket: required",
			"coffer.yaml:6: jobs.app.source.type: unknown source type",
			"coffer.yaml:7: jobs.app.compression.level: 0 is out of range",
			"coffer.yaml:8: jobs.app.rto: must be positive",
		},
	},
}

func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "open.txt", "s3cr3t\n", 0o644)
	writeFile(t, dir, "closed.txt", "s3cr3t\n", 0o600)
	writeFile(t, dir, "empty.txt", "\n", 0o600)
	key, other := signingKey(t, dir, "signing.key", 0o600), signingKey(t, dir, "other.key", 0o600)
	signingKey(t, dir, "signing-open.key", 0o644)
	fill := func(s string) string {
		return strings.NewReplacer("@R@", testRecipient, "@DIR@", dir,
			"@SID@", key.ID(), "@S@", key.String(), "@PID@", other.ID(), "@P@", other.String()).Replace(s)
	}
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("coffer.yaml", []byte(fill(tc.src)))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Error("config returned with an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, fill(w)) {
					t.Errorf("error lacks %q; got:\n%s", fill(w), msg)
				}
			}
			// Every line of the message is one FieldError for this file.
			fes := FieldErrors(err)
			if lines := strings.Count(msg, "\n") + 1; len(fes) != lines {
				t.Errorf("%d FieldErrors for %d lines:\n%s", len(fes), lines, msg)
			}
			for _, fe := range fes {
				if fe.File != "coffer.yaml" {
					t.Errorf("FieldError.File = %q", fe.File)
				}
			}
			for _, secret := range append([]string{"hunter2", "s3cr3t", testPrivateKey}, tc.dontWant...) {
				if strings.Contains(msg, secret) {
					t.Errorf("error shows a secret: %s", msg)
				}
			}
		})
	}
}

func TestFieldErrors(t *testing.T) {
	src := patch(edits{6: "    source: {type: postgress, database: app}"})
	_, err := Parse("coffer.yaml", []byte(strings.ReplaceAll(src, "@R@", testRecipient)))
	fes := FieldErrors(err)
	want := FieldError{File: "coffer.yaml", Line: 6, Field: "jobs.app.source.type",
		Msg: `unknown source type "postgress" (want postgres, mysql, sqlite, exec)`}
	if len(fes) != 1 || *fes[0] != want {
		t.Fatalf("got %v, want [%v]", fes, want)
	}
	if got := want.Error(); got != `coffer.yaml:6: jobs.app.source.type: unknown source type "postgress" (want postgres, mysql, sqlite, exec)` {
		t.Errorf("Error() = %q", got)
	}
	if got := (&FieldError{File: "c.yaml", Msg: "the file is empty"}).Error(); got != "c.yaml: the file is empty" {
		t.Errorf("Error() = %q", got)
	}
}

// TestTestdataBad checks the bad configurations kept as files: each
// testdata/bad-*.yaml starts with "# want: " lines naming the problems.
func TestTestdataBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad-*.yaml: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			_, err = Load(file)
			if err == nil {
				t.Fatal("no error")
			}
			if n := len(FieldErrors(err)); n != len(want) {
				t.Errorf("%d problems, want %d:\n%v", n, len(want), err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
		})
	}
}

// FuzzParse checks that no input makes Parse panic, and that it returns a
// config or FieldErrors, never both or neither. Each problem names the file
// and a line that exists (or the one after the last, for a syntax error at
// the end), and the same input always gets the same answer.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range badConfigs {
		f.Add([]byte(strings.ReplaceAll(tc.src, "@R@", testRecipient)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
		if err != nil && len(FieldErrors(err)) == 0 {
			t.Fatalf("error without FieldErrors: %v", err)
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
		for _, fe := range FieldErrors(err) {
			if fe.File != "fuzz.yaml" || fe.Msg == "" || fe.Line < 0 || fe.Line > lines+1 {
				t.Fatalf("malformed FieldError %+v (input has %d lines)", fe, lines)
			}
		}
		if _, again := Parse("fuzz.yaml", data); fmt.Sprint(again) != fmt.Sprint(err) {
			t.Fatalf("Parse is not deterministic:\n%v\n%v", err, again)
		}
	})
}

func TestRecipients(t *testing.T) {
	for _, tc := range []struct {
		r    string
		want string // "" for valid
	}{
		{testRecipient, ""},
		{"age1pq1", "invalid age recipient"},
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGO4Upqps8T1j2RiajnLe+DDVWq84wFCXMyuhWM32pMk ops@example", "SSH keys are not supported"},
		{testPrivateKey, "this is a private key; put its public key (age-keygen -y) here"},
		{strings.ToLower(testPrivateKey), "this is a private key"},
		{"AGE-PLUGIN-YUBIKEY-1QQQQQQ", "plugin identity"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----", "this is a private key"},
		{"age1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "invalid age recipient"},
		{"age1pq1qqqq", "invalid age recipient"},
		{" ", "empty recipient"},
		{testRecipient + "\n" + testRecipient2, "one recipient per list item"},
		{"alice@example.com", "not an age recipient"},
	} {
		p := &parser{file: "t", pos: map[string]int{}, bad: map[string]bool{}}
		p.checkRecipient("recipients[0]", tc.r)
		switch {
		case tc.want == "" && len(p.errs) > 0:
			t.Errorf("%q: %v", tc.r, p.errs[0])
		case tc.want != "" && (len(p.errs) != 1 || !strings.Contains(p.errs[0].Msg, tc.want)):
			t.Errorf("%q: got %v, want %q", tc.r, p.errs, tc.want)
		case tc.want != "" && strings.Contains(strings.ToUpper(p.errs[0].Msg), "AGE-SECRET-KEY-1"):
			t.Errorf("%q: message shows the key: %v", tc.r, p.errs[0])
		}
	}
}
