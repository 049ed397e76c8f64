package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timezone must validate the same on hosts without a zoneinfo database

	"filippo.io/age"
	"github.com/robfig/cron/v3"
)

// nameRE is what job and destination names must match: they become parts
// of object keys and metric labels.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// extensionRE is what an exec source's extension must match.
var extensionRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// cronParser reads schedules: 5 fields (minute hour day-of-month month
// day-of-week), 6 fields with seconds first (for tests and drills that
// need them), or a descriptor (@daily, @weekly, @every 6h). Only
// validation parses them; the rest of Coffer uses Job.BackupSchedule and
// Job.DrillSchedule.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// validate checks a decoded configuration with its defaults applied.
func (p *parser) validate(c *Config) {
	if len(c.Destinations) == 0 {
		p.errorf("destinations", "at least one destination is required")
	}
	if len(c.Jobs) == 0 {
		p.errorf("jobs", "at least one job is required")
	}
	for i, r := range c.Recipients {
		p.checkRecipient(fmt.Sprintf("recipients[%d]", i), r)
	}
	for _, name := range c.DestinationOrder {
		p.checkDestination(c.Destinations[name])
	}
	p.checkOverlaps(c)
	for _, name := range c.JobOrder {
		p.checkJob(c, c.Jobs[name])
	}
	p.checkDaemon(&c.Daemon)
	if c.Restore.Jobs < 1 || c.Restore.Jobs > 64 {
		p.errorf("restore.jobs", "want 1 to 64 pg_restore workers, got %d", c.Restore.Jobs)
	}
	if c.Restore.SpoolDir != "" && !filepath.IsAbs(c.Restore.SpoolDir) {
		p.errorf("restore.spool_dir", "must be an absolute path, got %q", c.Restore.SpoolDir)
	}
	p.checkSigning(&c.Signing)
	plain := false
	for i, u := range c.Notify.Webhooks {
		plain = p.checkURL(fmt.Sprintf("notify.webhooks[%d]", i), u, c.Notify.InsecureHTTP, "notify.insecure_http") || plain
	}
	for i, u := range c.Notify.Slack {
		plain = p.checkURL(fmt.Sprintf("notify.slack[%d]", i), u, c.Notify.InsecureHTTP, "notify.insecure_http") || plain
	}
	if c.Notify.InsecureHTTP && !plain && !p.isBad("notify.insecure_http") {
		p.errorf("notify.insecure_http", "only allows http:// webhook and slack URLs and none is one; remove it")
	}
}

// checkDaemon checks the daemon settings.
func (p *parser) checkDaemon(d *Daemon) {
	if d.Listen != "off" {
		host, port, err := net.SplitHostPort(d.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			p.errorf("daemon.listen", "want host:port such as 127.0.0.1:9847, or off, got %q", d.Listen)
		} else if host == "" {
			p.errorf("daemon.listen", "name the address to listen on, such as 127.0.0.1:%s (an empty host listens on every interface)", port)
		}
	}
	for i, cidr := range d.Allow {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.errorf(fmt.Sprintf("daemon.allow[%d]", i), "want a network such as 10.0.0.0/8 or 127.0.0.1/32, got %q", cidr)
		}
	}
	if d.MaxConcurrent < 1 {
		p.errorf("daemon.max_concurrent", "want at least 1")
	}
	if d.StateDir != "" && !filepath.IsAbs(d.StateDir) {
		p.errorf("daemon.state_dir", "must be an absolute path, got %q", d.StateDir)
	}
	positive := []struct {
		key string
		d   Duration
		min time.Duration
	}{
		{"shutdown_timeout", d.ShutdownTimeout, time.Second},
		{"lease_ttl", d.LeaseTTL, 5 * time.Second},
		{"leftover_grace", d.LeftoverGrace, time.Second},
		{"repair_interval", d.RepairInterval, time.Second},
	}
	for _, f := range positive {
		if f.d.D() < f.min {
			p.errorf("daemon."+f.key, "%s is too short (want at least %s)", f.d, Duration(f.min))
		}
	}
}

// checkURL checks a notification URL without showing it (it may hold a
// token): https://, or http:// when insecure (the setting named flag)
// allows it. It reports whether the URL is a valid http:// one.
func (p *parser) checkURL(path string, s Secret, insecure bool, flag string) (plain bool) {
	u, err := url.Parse(s.Reveal())
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		p.errorf(path, "want an https:// URL")
	case u.Scheme == "http" && !insecure:
		p.errorf(path, "http:// sends the notification and the URL's token unencrypted; use https://, or set %s: true if this is a local test receiver", flag)
	}
	return err == nil && u.Scheme == "http" && u.Host != ""
}

// checkName checks a job or destination name.
func (p *parser) checkName(path, kind, name string) {
	if !nameRE.MatchString(name) {
		p.errorf(path, "invalid %s name %q: want lower-case letters, digits, _ and -, starting with a letter or digit, at most 63 characters", kind, name)
	}
}

// notUsed reports each of keys set under path although type t has no use
// for it.
func (p *parser) notUsed(path, kind, t string, keys ...string) {
	for _, k := range keys {
		if p.has(join(path, k)) {
			p.errorf(join(path, k), "not used by %s %ss", t, kind)
		}
	}
}

// s3Keys are the destination keys only s3 destinations use.
var s3Keys = []string{"object_lock", "endpoint", "region", "bucket", "prefix", "path_style", "access_key_id",
	"secret_access_key", "secret_access_key_file", "session_token", "session_token_file", "ca_file", "insecure_http"}

// checkDestination checks one destination.
func (p *parser) checkDestination(d *Destination) {
	path := "destinations." + d.Name
	p.checkName(path, "destination", d.Name)
	switch d.Type {
	case "s3":
		p.notUsed(path, "destination", d.Type, "path")
		switch {
		case d.Bucket == "":
			p.errorf(path+".bucket", "required for s3 destinations")
		case strings.Contains(d.Bucket, "/"):
			p.errorf(path+".bucket", "a bucket name has no /; put the folder in prefix")
		}
		if d.Prefix != "" {
			switch {
			case strings.HasPrefix(d.Prefix, "/") || strings.HasSuffix(d.Prefix, "/"):
				p.errorf(path+".prefix", "must not start or end with / (write %q)", strings.Trim(d.Prefix, "/"))
			case slices.ContainsFunc(strings.Split(d.Prefix, "/"), func(s string) bool { return s == "" || s == "." || s == ".." }):
				p.errorf(path+".prefix", "empty, . and .. segments are not allowed")
			}
		}
		p.checkTransport(path, d)
		hasKey, hasSecret := d.AccessKeyID != "", !d.SecretAccessKey.IsZero()
		switch {
		case hasKey && !hasSecret && !p.isBad(path+".secret_access_key") && !p.isBad(path+".secret_access_key_file"):
			p.errorf(path+".access_key_id", "set without secret_access_key; set both, or neither to use the AWS default credential chain")
		case hasSecret && !hasKey:
			p.errorf(path+".access_key_id", "required with secret_access_key; set both, or neither to use the AWS default credential chain")
		}
		if !d.SessionToken.IsZero() && !(hasKey && hasSecret) {
			p.errorf(path+".session_token", "needs access_key_id and secret_access_key")
		}
		if d.ObjectLock != nil && d.ObjectLock.Mode != "governance" && d.ObjectLock.Mode != "compliance" {
			p.errorf(path+".object_lock.mode", "want governance or compliance, got %q", d.ObjectLock.Mode)
		}
	case "local":
		p.notUsed(path, "destination", d.Type, s3Keys...)
		switch {
		case d.Path == "":
			p.errorf(path+".path", "required for local destinations")
		case !filepath.IsAbs(d.Path):
			p.errorf(path+".path", "must be an absolute path, got %q", d.Path)
		}
	case "":
		p.errorf(path+".type", "required (want s3, local)")
	default:
		p.errorf(path+".type", "unknown destination type %q (want s3, local)", d.Type)
	}
}

// checkTransport checks an s3 destination's endpoint, ca_file and
// insecure_http: TLS unless plain HTTP is asked for by name.
func (p *parser) checkTransport(path string, d *Destination) {
	plain := false
	if d.Endpoint != "" {
		u, err := url.Parse(d.Endpoint)
		switch {
		case err == nil && u.User != nil: // checked first: the message must not show them
			p.errorf(path+".endpoint", "must not hold credentials; use access_key_id and secret_access_key")
			return
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
			p.errorf(path+".endpoint", "want a URL such as https://s3.example.com, got %q", d.Endpoint)
			return
		}
		plain = u.Scheme == "http"
	}
	switch {
	case p.isBad(path + ".insecure_http"):
	case plain && !d.InsecureHTTP:
		p.errorf(path+".endpoint", "http:// sends credentials and backups unencrypted; use https://, or set insecure_http: true if this is a local test server")
	case !plain && d.InsecureHTTP:
		p.errorf(path+".insecure_http", "only allows an http:// endpoint and this one uses TLS; remove it (certificates are always checked: for a private CA, set ca_file)")
	}
	if d.CAFile == "" || p.isBad(path+".ca_file") {
		return
	}
	if plain {
		p.errorf(path+".ca_file", "not used with an http:// endpoint")
		return
	}
	if err := checkCAFile(d.CAFile); err != nil {
		p.errorf(path+".ca_file", "%v", err)
	}
}

// maxCAFile bounds the CA bundle a configuration may name.
const maxCAFile = 4 << 20

// checkCAFile checks that name is a PEM file holding CA certificates and
// nothing else. Messages name the file, never its contents.
func checkCAFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cannot read CA bundle: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	switch {
	case err != nil:
		return fmt.Errorf("cannot read CA bundle %s: %v", name, err)
	case len(data) > maxCAFile:
		return fmt.Errorf("CA bundle %s is larger than %d MiB", name, maxCAFile>>20)
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return fmt.Errorf("%s holds a private key; ca_file wants CA certificates only (remove the key from the file)", name)
			}
			return fmt.Errorf("%s holds a PEM %q block; ca_file wants CERTIFICATE blocks only", name, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%s: certificate %d does not parse: %v", name, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)", name)
	}
	return nil
}

// checkOverlaps refuses two destinations that are the same place, or one
// inside the other: a backup in both would be one copy, not two.
func (p *parser) checkOverlaps(c *Config) {
	type place struct {
		name, where string
		segs        []string
	}
	var places []place
	for _, name := range c.DestinationOrder {
		d := c.Destinations[name]
		switch {
		case d.Type == "s3" && d.Bucket != "":
			ep := strings.ToLower(strings.TrimRight(d.Endpoint, "/"))
			ep = strings.TrimPrefix(strings.TrimPrefix(ep, "https://"), "http://")
			places = append(places, place{name, "s3 " + ep + " " + d.Bucket, splitPath(d.Prefix)})
		case d.Type == "local" && filepath.IsAbs(d.Path):
			places = append(places, place{name, "local", splitPath(filepath.ToSlash(filepath.Clean(d.Path)))})
		}
	}
	for j, b := range places {
		for _, a := range places[:j] {
			if a.where != b.where {
				continue
			}
			path := "destinations." + b.name
			switch {
			case slices.Equal(a.segs, b.segs):
				p.errorf(path, "same place as destination %q (line %d); primary and offsite must differ", a.name, p.line("destinations."+a.name))
			case hasPrefix(a.segs, b.segs) || hasPrefix(b.segs, a.segs):
				p.errorf(path, "overlaps destination %q (line %d): one is inside the other; primary and offsite must differ", a.name, p.line("destinations."+a.name))
			default:
				continue
			}
			break
		}
	}
}

// splitPath splits a slash-separated path into its non-empty segments.
func splitPath(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '/' })
}

// hasPrefix reports whether the segments s start with prefix.
func hasPrefix(s, prefix []string) bool {
	return len(prefix) <= len(s) && slices.Equal(s[:len(prefix)], prefix)
}

// checkRecipient checks one age recipient. Messages never repeat a value
// that might be a private key.
func (p *parser) checkRecipient(path, r string) {
	upper := strings.ToUpper(r)
	switch {
	case strings.Contains(upper, "AGE-SECRET-KEY-"):
		p.errorf(path, "this is a private key; put its public key (age-keygen -y) here")
	case strings.Contains(upper, "AGE-PLUGIN-"):
		p.errorf(path, "this is a plugin identity, a private key; put its recipient (age1...) here")
	case strings.Contains(upper, "PRIVATE KEY"):
		p.errorf(path, "this is a private key; put its public key (the .pub file) here")
	case strings.TrimSpace(r) == "":
		p.errorf(path, "empty recipient")
	case strings.ContainsAny(r, "\r\n"):
		p.errorf(path, "one recipient per list item")
	case strings.HasPrefix(r, "ssh-") || strings.HasPrefix(r, "ecdsa-") || strings.HasPrefix(r, "sk-"):
		// seal encrypts to age recipients only; accepting SSH keys here
		// would pass config check and fail the backup.
		p.errorf(path, "SSH keys are not supported as recipients; use an age public key (age-keygen, then age-keygen -y)")
	case strings.HasPrefix(r, "age1pq1"):
		if _, err := age.ParseHybridRecipient(r); err != nil {
			p.errorf(path, "invalid age recipient: %v", err)
		}
	case strings.HasPrefix(r, "age1"):
		if _, err := age.ParseX25519Recipient(r); err != nil {
			p.errorf(path, "invalid age recipient: %v", err)
		}
	default:
		p.errorf(path, "not an age recipient: want an age public key (age1..., from age-keygen -y)")
	}
}

// checkJob checks one job.
func (p *parser) checkJob(c *Config, j *Job) {
	path := "jobs." + j.Name
	p.checkName(path, "job", j.Name)

	dp := path + ".destinations"
	if len(j.Destinations) == 0 && len(c.Destinations) > 0 {
		p.errorf(dp, "at least one destination is required")
	}
	seen := map[string]bool{}
	for i, name := range j.Destinations {
		if len(c.Destinations) == 0 {
			break // reported once, at the top level
		}
		ip := fmt.Sprintf("%s[%d]", dp, i)
		switch {
		case c.Destinations[name] == nil:
			p.errorf(ip, "unknown destination %q (have: %s)", name, strings.Join(c.DestinationOrder, ", "))
		case seen[name]:
			p.errorf(ip, "destination %q is listed twice", name)
		}
		seen[name] = true
	}

	rp := path + ".recipients"
	if len(j.Recipients) == 0 {
		p.errorf(rp, "no recipients: set recipients at the top level or in the job")
	}
	if p.has(rp) {
		for i, r := range j.Recipients {
			p.checkRecipient(fmt.Sprintf("%s[%d]", rp, i), r)
		}
	}

	backup := p.checkSchedule(path+".schedule", j.Schedule)
	loc := p.checkTimezone(path+".timezone", j.Timezone)

	if l := j.Compression.Level; l < 1 || l > 22 {
		p.errorf(path+".compression.level", "%d is out of range (want 1 to 22)", l)
	}
	if j.Compression.Threads < 1 {
		p.errorf(path+".compression.threads", "want at least 1 (leave it out for one per CPU)")
	}

	r := j.Retention
	kp := path + ".retention.keep_within"
	switch {
	case r.KeepWithin < 0:
		p.errorf(kp, "must not be negative")
	case r.KeepWithin < MinKeepWithin && !r.AllowShort:
		p.errorf(kp, "%s is shorter than the 28d minimum every backup is promised; set retention.allow_short: true to allow it", r.KeepWithin)
	}
	if r.MinKeep < 1 {
		p.errorf(path+".retention.min_keep", "want at least 1")
	}
	if r.KeepWeekly < 0 {
		p.errorf(path+".retention.keep_weekly", "must not be negative")
	}
	if r.KeepMonthly < 0 {
		p.errorf(path+".retention.keep_monthly", "must not be negative")
	}
	if j.RTO <= 0 {
		p.errorf(path+".rto", "must be positive, such as 8h")
	}

	if j.MaxShrinkPercent < 1 || j.MaxShrinkPercent > 100 {
		p.errorf(path+".max_shrink_percent", "%d is out of range (want 1 to 100; 100 turns the check off)", j.MaxShrinkPercent)
	}
	if j.StallTimeout.D() < time.Second {
		p.errorf(path+".stall_timeout", "%s is too short (want at least 1s)", j.StallTimeout)
	}
	plainPing := !j.PingURL.IsZero() && p.checkURL(path+".ping_url", j.PingURL, j.PingInsecureHTTP, path+".ping_insecure_http")
	if j.PingInsecureHTTP && !plainPing && !p.isBad(path+".ping_insecure_http") {
		p.errorf(path+".ping_insecure_http", "only allows an http:// ping_url and this job has none; remove it")
	}

	p.checkSource(path+".source", &j.Source)
	drill := p.checkDrill(path+".drill", j)
	j.setTimes(loc, backup, drill)
}

// checkTimezone checks a job's time zone and returns it loaded, or nil
// when it is wrong.
func (p *parser) checkTimezone(path, tz string) *time.Location {
	if tz == "" {
		p.errorf(path, "must not be empty (leave it out for UTC)")
		return nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		p.errorf(path, "unknown time zone %q (want an IANA name such as UTC or Europe/Berlin)", tz)
		return nil
	}
	return loc
}

// checkDrill checks a job's drill settings and returns its drill
// schedule parsed, or nil when it is wrong.
func (p *parser) checkDrill(path string, j *Job) cron.Schedule {
	d := &j.Drill
	if d.Enabled && j.Source.Type == "exec" {
		p.errorf(path+".enabled", "exec sources cannot be drilled (Coffer cannot load their dumps); set enabled: false")
	}
	sched := p.checkSchedule(path+".schedule", d.Schedule)
	if d.From != "" && !slices.Contains(j.Destinations, d.From) {
		p.errorf(path+".from", "destination %q is not one of the job's destinations (%s)", d.From, strings.Join(j.Destinations, ", "))
	}
	if d.Target.Port < 0 || d.Target.Port > 65535 {
		p.errorf(path+".target.port", "%d is out of range (want 1 to 65535)", d.Target.Port)
	}
	if d.WarnPercent < 1 || d.WarnPercent > 100 {
		p.errorf(path+".warn_percent", "%d is out of range (want 1 to 100)", d.WarnPercent)
	}
	if d.MaxAge <= 0 {
		p.errorf(path+".max_age", "must be positive, such as 35d")
	}
	names := map[string]bool{}
	for i, c := range d.Checks {
		cp := fmt.Sprintf("%s.checks[%d]", path, i)
		switch {
		case strings.TrimSpace(c.Name) == "":
			p.errorf(cp+".name", "is required")
		case names[c.Name]:
			p.errorf(cp+".name", "%q is used by another check", c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Query) == "" {
			p.errorf(cp+".query", "is required (an SQL query whose first column of the first row is compared)")
		}
		if strings.TrimSpace(c.Expect) == "" {
			p.errorf(cp+".expect", "is required, such as \"> 0\" or \"= 42\"")
		} else if _, err := ParseExpectation(c.Expect); err != nil {
			p.errorf(cp+".expect", "%v", err)
		}
	}
	return sched
}

// checkSchedule checks a cron schedule and returns it parsed, or nil when
// it is wrong.
func (p *parser) checkSchedule(path, s string) cron.Schedule {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		p.errorf(path, "set the time zone with the job's timezone key, not in the schedule")
		return nil
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), ": [") // cron repeats the fields
		p.errorf(path, "invalid schedule %q: %s (want 5 fields, minute hour day-of-month month day-of-week, or @daily, @weekly, @every 12h)", s, msg)
		return nil
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok && every.Delay < time.Minute {
		p.errorf(path, "runs every %s; the shortest interval is 1m", every.Delay)
		return nil
	}
	return sched
}

// sourceTypes lists the known source types, for messages.
const sourceTypes = "postgres, mysql, sqlite, exec"

// checkSource checks a job's source.
func (p *parser) checkSource(path string, s *Source) {
	switch s.Type {
	case "postgres", "mysql":
		p.notUsed(path, "source", s.Type, "path", "command", "env", "extension")
		if s.Database == "" {
			p.errorf(path+".database", "required for %s sources", s.Type)
		}
		if p.has(path+".port") && (s.Port < 1 || s.Port > 65535) {
			p.errorf(path+".port", "%d is out of range (want 1 to 65535)", s.Port)
		}
		if s.Type == "mysql" {
			p.notUsed(path, "source", s.Type, "format")
		} else if s.Format != "custom" && s.Format != "plain" {
			p.errorf(path+".format", "unknown postgres format %q (want custom, plain)", s.Format)
		}
	case "sqlite":
		p.notUsed(path, "source", s.Type, "host", "port", "user", "password", "password_file", "database", "format", "command", "env", "extension")
		switch {
		case s.Path == "":
			p.errorf(path+".path", "required for sqlite sources")
		case !filepath.IsAbs(s.Path):
			p.errorf(path+".path", "must be an absolute path, got %q", s.Path)
		}
	case "exec":
		p.notUsed(path, "source", s.Type, "host", "port", "user", "password", "password_file", "database", "format", "path")
		switch {
		case len(s.Command) == 0:
			p.errorf(path+".command", "required for exec sources: the program and its arguments, as a list")
		case s.Command[0] == "":
			p.errorf(path+".command[0]", "the program name is empty")
		}
		if !extensionRE.MatchString(s.Extension) {
			p.errorf(path+".extension", "want 1 to 16 lower-case letters or digits, such as sql")
		}
		for name := range s.Env {
			if !isEnvName(name) {
				p.errorf(path+".env."+name, "invalid environment variable name")
			}
		}
	case "":
		p.errorf(path+".type", "required (want %s)", sourceTypes)
	default:
		p.errorf(path+".type", "unknown source type %q (want %s)", s.Type, sourceTypes)
	}
}
