package deploy_test

// These tests hold the deployment files to what docs/deploy.md promises:
// the systemd units carry the sandbox and the shutdown and reload settings,
// the timers catch up missed runs and fire on Coffer's default schedule,
// the CronJobs run non-root on a read-only root with every capability
// dropped and take their secrets from files, only the backups hold the
// manifest signing key (and can read it), and every command line in them
// is one the real coffer binary accepts.

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
)

// The files under test, relative to this directory.
const (
	daemonUnit      = "systemd/coffer.service"
	backupUnit      = "systemd/coffer-backup@.service"
	backupTimer     = "systemd/coffer-backup@.timer"
	pruneUnit       = "systemd/coffer-prune.service"
	pruneTimer      = "systemd/coffer-prune.timer"
	sysusers        = "systemd/coffer.sysusers.conf"
	backupCronJob   = "kubernetes/cronjob.yaml"
	pruneCronJob    = "kubernetes/prune-cronjob.yaml"
	configMapSample = "kubernetes/configmap.example.yaml"
)

var serviceUnits = []string{daemonUnit, backupUnit, pruneUnit}

// ---- systemd ----------------------------------------------------------

// unit is a parsed systemd unit file: the assignments of each section, in
// file order.
type unit struct {
	path     string
	sections map[string][]assignment
}

type assignment struct {
	key, value string
	line       int
}

// parseUnit reads a unit file the way systemd does, as far as these files
// need: sections, Key=Value lines, comments (# and ;), and lines continued
// with a trailing backslash. Anything else fails the test.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{path: path, sections: map[string][]assignment{}}
	section := ""
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		start := n
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			n++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				t.Fatalf("%s:%d: bad section header %q", path, start, line)
			}
			section = line[1 : len(line)-1]
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: want Key=Value inside a section, got %q", path, start, line)
			}
			u.sections[section] = append(u.sections[section], assignment{strings.TrimSpace(key), strings.TrimSpace(value), start})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns the last value assigned to key in section (the one systemd
// uses for single-valued settings) and whether key is assigned at all.
func (u unit) get(section, key string) (string, bool) {
	v, ok := "", false
	for _, a := range u.sections[section] {
		if a.key == key {
			v, ok = a.value, true
		}
	}
	return v, ok
}

// all returns every value assigned to key in section, in order.
func (u unit) all(section, key string) []string {
	var out []string
	for _, a := range u.sections[section] {
		if a.key == key {
			out = append(out, a.value)
		}
	}
	return out
}

// want fails unless key in section is assigned exactly value.
func (u unit) want(t *testing.T, section, key, value string) {
	t.Helper()
	got, ok := u.get(section, key)
	switch {
	case !ok:
		t.Errorf("%s: [%s] %s is not set; want %s=%s", u.path, section, key, key, value)
	case got != value:
		t.Errorf("%s: [%s] %s=%s; want %s=%s", u.path, section, key, got, key, value)
	}
}

// execArgs splits an Exec*= command line into its words, dropping
// systemd's prefixes (-, @, +, !, :).
func execArgs(t *testing.T, u unit, key string) []string {
	t.Helper()
	v, ok := u.get("Service", key)
	if !ok {
		t.Fatalf("%s: %s is not set", u.path, key)
	}
	if strings.ContainsAny(v, `"'`) {
		t.Fatalf("%s: %s uses quotes, which this test does not parse: %s", u.path, key, v)
	}
	return strings.Fields(strings.TrimLeft(v, "-@+!:"))
}

// flagValue returns the value of --name in args (as "--name value" or
// "--name=value").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// timespanRE is one term of a systemd time span ("45s", "6h", "5min").
var timespanRE = regexp.MustCompile(`^(\d+)(us|ms|s|sec|m|min|h|hr|d)?$`)

// parseTimespan reads the systemd time spans these units use.
func parseTimespan(s string) (time.Duration, error) {
	if s == "infinity" {
		return time.Duration(1<<63 - 1), nil
	}
	units := map[string]time.Duration{"": time.Second, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "sec": time.Second, "m": time.Minute, "min": time.Minute,
		"h": time.Hour, "hr": time.Hour, "d": 24 * time.Hour}
	var total time.Duration
	terms := strings.Fields(s)
	if len(terms) == 0 {
		return 0, errors.New("empty time span")
	}
	for _, term := range terms {
		m := timespanRE.FindStringSubmatch(term)
		if m == nil {
			return 0, fmt.Errorf("time span %q: cannot read %q", s, term)
		}
		n, _ := strconv.Atoi(m[1])
		total += time.Duration(n) * units[m[2]]
	}
	return total, nil
}

// TestServiceSandbox: every Coffer service runs as the coffer user inside
// the promised sandbox, and writes nowhere but its state directory.
func TestServiceSandbox(t *testing.T) {
	exact := []struct{ key, value string }{
		{"User", "coffer"},
		{"Group", "coffer"},
		{"StateDirectory", "coffer"},
		{"StateDirectoryMode", "0700"},
		{"ConfigurationDirectory", "coffer"},
		{"UMask", "0077"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictNamespaces", "yes"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"RestrictRealtime", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"SystemCallArchitectures", "native"},
		{"CapabilityBoundingSet", ""},
		{"KillSignal", "SIGTERM"},
	}
	for _, path := range serviceUnits {
		t.Run(filepath.Base(path), func(t *testing.T) {
			u := parseUnit(t, path)
			for _, e := range exact {
				u.want(t, "Service", e.key, e.value)
			}
			if v, ok := u.get("Service", "DynamicUser"); ok && v != "no" {
				t.Errorf("%s: DynamicUser=%s; Coffer runs as the fixed user coffer", path, v)
			}
			// An empty CapabilityBoundingSet= must not be followed by one
			// that grants capabilities again.
			if caps := u.all("Service", "CapabilityBoundingSet"); len(caps) != 1 {
				t.Errorf("%s: CapabilityBoundingSet assigned %d times (%q); want it once, empty", path, len(caps), caps)
			}
			families := u.all("Service", "RestrictAddressFamilies")
			if len(families) != 1 || !sameSet(strings.Fields(families[0]), []string{"AF_UNIX", "AF_INET", "AF_INET6"}) {
				t.Errorf("%s: RestrictAddressFamilies %q; want exactly AF_UNIX AF_INET AF_INET6", path, families)
			}
			filters := u.all("Service", "SystemCallFilter")
			if len(filters) == 0 || filters[0] != "@system-service" {
				t.Errorf("%s: SystemCallFilter %q; want the allow list @system-service first", path, filters)
			}
			for _, f := range filters[1:] {
				if !strings.HasPrefix(f, "~") {
					t.Errorf("%s: SystemCallFilter=%s widens the allow list; only ~deny lists may follow @system-service", path, f)
				}
			}
			// Writable: the StateDirectory only; a local destination is
			// added by the user in a drop-in.
			if rw := u.all("Service", "ReadWritePaths"); len(rw) > 0 {
				t.Errorf("%s: ReadWritePaths=%q; the shipped unit needs none beyond StateDirectory=", path, rw)
			}
			// SIGTERM lets Coffer abort its jobs within shutdown_timeout;
			// systemd must wait longer than that before SIGKILL.
			v, ok := u.get("Service", "TimeoutStopSec")
			if !ok {
				t.Fatalf("%s: TimeoutStopSec is not set", path)
			}
			stop, err := parseTimespan(v)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if def := time.Duration(config.DefaultShutdownTimeout); stop <= def || stop > def+time.Minute {
				t.Errorf("%s: TimeoutStopSec=%s; want a little more than the default shutdown_timeout %s", path, v, def)
			}
			u.want(t, "Service", "KillMode", "mixed")
			args := execArgs(t, u, "ExecStart")
			if filepath.Base(args[0]) != "coffer" {
				t.Errorf("%s: ExecStart runs %s, not coffer", path, args[0])
			}
			if cfg, _ := flagValue(args, "--config"); cfg != "/etc/coffer/coffer.yaml" {
				t.Errorf("%s: ExecStart --config %q; want /etc/coffer/coffer.yaml (ConfigurationDirectory=coffer)", path, cfg)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// signingKeyPath is where docs/deploy.md has the operator create the
// manifest signing key for the systemd units (signing.key_file).
const signingKeyPath = "/etc/coffer/signing.key"

// pathSettings are the sandbox settings that can hide a path from a
// service or put something else in its place.
var pathSettings = []string{"InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "RootDirectory", "RootImage", "MountImages"}

// covers reports whether dir is path or one of its parent directories.
func covers(dir, path string) bool {
	dir = filepath.Clean(dir)
	return dir == path || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// TestServicesReadSigningKey: every Coffer service can read the signing
// key where docs/deploy.md puts it. It lies in the ConfigurationDirectory
// (ProtectSystem=strict makes /etc read-only, not unreadable), the service
// runs as the user the docs make own it (Coffer refuses a key group or
// others may read), and no setting hides it or mounts something over it.
func TestServicesReadSigningKey(t *testing.T) {
	for _, path := range serviceUnits {
		u := parseUnit(t, path)
		if dir, _ := u.get("Service", "ConfigurationDirectory"); filepath.Join("/etc", dir) != filepath.Dir(signingKeyPath) {
			t.Errorf("%s: ConfigurationDirectory=%s; want the signing key's directory %s", path, dir, filepath.Dir(signingKeyPath))
		}
		for _, key := range pathSettings {
			for _, v := range u.all("Service", key) {
				for _, entry := range strings.Fields(v) {
					entry = strings.TrimLeft(entry, "-+")
					target := entry
					if parts := strings.Split(entry, ":"); len(parts) > 1 {
						target = parts[0] // TemporaryFileSystem=PATH:OPTIONS
						if strings.HasPrefix(key, "Bind") || key == "MountImages" {
							target = parts[1] // BindPaths=SOURCE:DEST[:OPTIONS]
						}
					}
					if key == "RootDirectory" || key == "RootImage" || covers(target, signingKeyPath) {
						t.Errorf("%s: %s=%s hides or replaces %s, the signing key", path, key, v, signingKeyPath)
					}
				}
			}
		}
	}
	// The docs create the key there, owned by the units' user.
	doc, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	user, _ := parseUnit(t, daemonUnit).get("Service", "User")
	for _, want := range []string{
		"coffer keygen --signing-key " + signingKeyPath,
		"chown " + user + ":" + user + " " + signingKeyPath,
		"key_file: " + signingKeyPath,
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/deploy.md does not say %q", want)
		}
	}
}

// TestDaemonUnit: coffer.service runs `coffer run`, restarts on failure
// except after a configuration error, and reloads with SIGHUP.
func TestDaemonUnit(t *testing.T) {
	u := parseUnit(t, daemonUnit)
	if args := execArgs(t, u, "ExecStart"); len(args) < 2 || args[1] != "run" {
		t.Errorf("ExecStart=%s; want `coffer run`", strings.Join(args, " "))
	}
	u.want(t, "Service", "ExecReload", "/bin/kill -HUP $MAINPID")
	u.want(t, "Service", "Restart", "on-failure")
	if v, _ := u.get("Service", "RestartPreventExitStatus"); !slices.Contains(strings.Fields(v), "2") {
		t.Errorf("RestartPreventExitStatus=%q; want exit 2 (configuration error) not restarted", v)
	}
	u.want(t, "Install", "WantedBy", "multi-user.target")
}

// TestTimerUnits: the timer-driven alternative backs up one job per
// instance, prunes every job, catches up slots missed while the machine
// was off, and never lets a stuck run go on past the RTO.
func TestTimerUnits(t *testing.T) {
	b := parseUnit(t, backupUnit)
	b.want(t, "Service", "Type", "oneshot")
	args := execArgs(t, b, "ExecStart")
	if len(args) < 2 || args[1] != "backup" {
		t.Errorf("%s: ExecStart=%s; want `coffer backup`", backupUnit, strings.Join(args, " "))
	}
	if job, _ := flagValue(args, "--job"); job != "%i" {
		t.Errorf("%s: --job %q; want the instance name %%i (the job name, unescaped as written)", backupUnit, job)
	}
	p := parseUnit(t, pruneUnit)
	p.want(t, "Service", "Type", "oneshot")
	args = execArgs(t, p, "ExecStart")
	if len(args) < 2 || args[1] != "prune" {
		t.Errorf("%s: ExecStart=%s; want `coffer prune`", pruneUnit, strings.Join(args, " "))
	}
	if _, ok := flagValue(args, "--job"); ok {
		t.Errorf("%s: ExecStart prunes one job; want every job", pruneUnit)
	}
	for _, u := range []unit{b, p} {
		v, ok := u.get("Service", "TimeoutStartSec")
		if !ok {
			t.Errorf("%s: TimeoutStartSec unset: a oneshot has no start timeout by default", u.path)
			continue
		}
		d, err := parseTimespan(v)
		if err != nil || d <= 0 || d > time.Duration(config.DefaultRTO) {
			t.Errorf("%s: TimeoutStartSec=%s (%v); want a bound within the default RTO %s", u.path, v, err, time.Duration(config.DefaultRTO))
		}
	}
	for _, path := range []string{backupTimer, pruneTimer} {
		u := parseUnit(t, path)
		u.want(t, "Timer", "Persistent", "true")
		if v, _ := u.get("Timer", "OnCalendar"); v == "" {
			t.Errorf("%s: no OnCalendar=", path)
		}
		u.want(t, "Install", "WantedBy", "timers.target")
	}
}

// TestSysusers: the sysusers file creates the system user the units run as.
func TestSysusers(t *testing.T) {
	data, err := os.ReadFile(sysusers)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "u" && f[1] == "coffer" {
			return
		}
	}
	t.Errorf("%s: no `u coffer ...` line", sysusers)
}

// TestSystemdAnalyze runs systemd's own checks where systemd-analyze is
// installed: verify (unknown keys, bad values, bad calendar specs),
// security (the sandbox rates OK), and the timers' next elapse times.
func TestSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the static checks above still ran")
	}
	// Copies whose ExecStart runs /bin/true, since verify insists the
	// program exists and coffer is not installed here.
	dir := t.TempDir()
	for _, path := range []string{daemonUnit, backupUnit, backupTimer, pruneUnit, pruneTimer} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
				f := strings.Fields(rest)
				line = "ExecStart=/bin/true " + strings.Join(f[1:], " ") + "\n"
			}
			out.WriteString(line)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(analyze, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TZ=UTC", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Templates are verified through an instance, as systemd loads them.
	units := []string{"coffer.service", "coffer-backup@app.service", "coffer-backup@app.timer", "coffer-prune.service", "coffer-prune.timer"}
	t.Run("verify", func(t *testing.T) {
		for _, name := range units {
			// Warnings (an unknown key, say) exit 0 but print: both fail.
			if out, err := run("verify", "--man=no", filepath.Join(dir, name)); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s (error: %v) printed:\n%s", name, err, out)
			}
		}
	})
	t.Run("security", func(t *testing.T) {
		for _, name := range []string{"coffer.service", "coffer-backup@app.service", "coffer-prune.service"} {
			// --threshold is the exposure level times ten: fail above 2.0.
			if out, err := run("security", "--offline=yes", "--threshold=20", filepath.Join(dir, name)); err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 or error: %v\n%s", name, err, out)
			}
		}
	})
	t.Run("calendar", func(t *testing.T) {
		const n = 3
		elapses := func(path string) []time.Time {
			spec, _ := parseUnit(t, path).get("Timer", "OnCalendar")
			out, err := run("calendar", "--iterations="+strconv.Itoa(n), spec)
			if err != nil {
				t.Fatalf("systemd-analyze calendar %q: %v\n%s", spec, err, out)
			}
			var times []time.Time
			for line := range strings.Lines(out) {
				line = strings.TrimSpace(line)
				if !strings.HasPrefix(line, "Next elapse:") && !strings.HasPrefix(line, "Iter. #") {
					continue
				}
				_, v, _ := strings.Cut(line, ": ")
				tm, err := time.Parse("Mon 2006-01-02 15:04:05 MST", v)
				if err != nil {
					t.Fatalf("systemd-analyze calendar %q: %v", spec, err)
				}
				times = append(times, tm.UTC())
			}
			if len(times) != n {
				t.Fatalf("systemd-analyze calendar %q: got %d times, want %d:\n%s", spec, len(times), n, out)
			}
			return times
		}
		now := time.Now().UTC()
		backups := elapses(backupTimer)
		// The timer fires when the daemon would: Coffer's default schedule.
		sched, err := cron.ParseStandard(config.DefaultSchedule)
		if err != nil {
			t.Fatal(err)
		}
		next := now
		for i, got := range backups {
			next = sched.Next(next)
			if !got.Equal(next) {
				t.Errorf("%s run %d at %s; Coffer's default schedule %q runs at %s", backupTimer, i+1, got, config.DefaultSchedule, next)
			}
		}
		// Prune runs after each backup, the same day.
		for i, p := range elapses(pruneTimer) {
			if gap := p.Sub(backups[i]); gap < time.Hour || gap >= 24*time.Hour {
				t.Errorf("prune run %d at %s, backup at %s: want prune 1 to 24 hours after the backup", i+1, p, backups[i])
			}
		}
	})
}

// ---- Kubernetes -------------------------------------------------------

// The subset of the Kubernetes API these manifests use. Decoding is
// strict: a key not listed here is an error, so a misspelt key is caught
// here and not silently dropped. Add a field when a manifest needs one.
type cronJob struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Schedule                   string `yaml:"schedule"`
		TimeZone                   string `yaml:"timeZone"`
		ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
		StartingDeadlineSeconds    *int64 `yaml:"startingDeadlineSeconds"`
		SuccessfulJobsHistoryLimit *int32 `yaml:"successfulJobsHistoryLimit"`
		FailedJobsHistoryLimit     *int32 `yaml:"failedJobsHistoryLimit"`
		Suspend                    *bool  `yaml:"suspend"`
		JobTemplate                struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     jobSpec    `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type jobSpec struct {
	BackoffLimit            *int32 `yaml:"backoffLimit"`
	ActiveDeadlineSeconds   *int64 `yaml:"activeDeadlineSeconds"`
	TTLSecondsAfterFinished *int32 `yaml:"ttlSecondsAfterFinished"`
	PodFailurePolicy        *struct {
		Rules []struct {
			Action      string `yaml:"action"`
			OnExitCodes *struct {
				ContainerName string  `yaml:"containerName"`
				Operator      string  `yaml:"operator"`
				Values        []int32 `yaml:"values"`
			} `yaml:"onExitCodes"`
			OnPodConditions []struct {
				Type   string `yaml:"type"`
				Status string `yaml:"status"`
			} `yaml:"onPodConditions"`
		} `yaml:"rules"`
	} `yaml:"podFailurePolicy"`
	Template struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     podSpec    `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	RestartPolicy                string `yaml:"restartPolicy"`
	ServiceAccountName           string `yaml:"serviceAccountName"`
	AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
	EnableServiceLinks           *bool  `yaml:"enableServiceLinks"`
	SecurityContext              struct {
		RunAsNonRoot   *bool           `yaml:"runAsNonRoot"`
		RunAsUser      *int64          `yaml:"runAsUser"`
		RunAsGroup     *int64          `yaml:"runAsGroup"`
		FSGroup        *int64          `yaml:"fsGroup"`
		SeccompProfile *seccompProfile `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []volume    `yaml:"volumes"`
}

type seccompProfile struct {
	Type string `yaml:"type"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	ImagePullPolicy string           `yaml:"imagePullPolicy"`
	Command         []string         `yaml:"command"`
	Args            []string         `yaml:"args"`
	Env             []envVar         `yaml:"env"`
	EnvFrom         []map[string]any `yaml:"envFrom"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool           `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool           `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool           `yaml:"runAsNonRoot"`
		RunAsUser                *int64          `yaml:"runAsUser"`
		Privileged               *bool           `yaml:"privileged"`
		SeccompProfile           *seccompProfile `yaml:"seccompProfile"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources    map[string]map[string]string `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef    *keyRef        `yaml:"secretKeyRef"`
		ConfigMapKeyRef *keyRef        `yaml:"configMapKeyRef"`
		FieldRef        map[string]any `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional *bool  `yaml:"optional"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
	Mode *int32 `yaml:"mode"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name        string      `yaml:"name"`
		Items       []keyToPath `yaml:"items"`
		DefaultMode *int32      `yaml:"defaultMode"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string      `yaml:"secretName"`
		Items       []keyToPath `yaml:"items"`
		DefaultMode *int32      `yaml:"defaultMode"`
	} `yaml:"secret"`
	EmptyDir *struct {
		Medium    string `yaml:"medium"`
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
}

type configMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
}

// decodeStrict decodes the single YAML document in path into v, refusing
// unknown keys.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadCronJob(t *testing.T, path string) *cronJob {
	t.Helper()
	var c cronJob
	decodeStrict(t, path, &c)
	if c.APIVersion != "batch/v1" || c.Kind != "CronJob" {
		t.Fatalf("%s: %s %s; want batch/v1 CronJob", path, c.APIVersion, c.Kind)
	}
	return &c
}

// coffer returns the pod's container named coffer.
func (c *cronJob) coffer(t *testing.T) *container {
	t.Helper()
	for i := range c.Spec.JobTemplate.Spec.Template.Spec.Containers {
		if ct := &c.Spec.JobTemplate.Spec.Template.Spec.Containers[i]; ct.Name == "coffer" {
			return ct
		}
	}
	t.Fatalf("CronJob %s: no container named coffer", c.Metadata.Name)
	return nil
}

// volumeAt returns the pod volume container ct mounts at dir.
func (c *cronJob) volumeAt(ct *container, dir string) (*volume, bool) {
	for _, m := range ct.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for i, v := range c.Spec.JobTemplate.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &c.Spec.JobTemplate.Spec.Template.Spec.Volumes[i], m.ReadOnly
			}
		}
	}
	return nil, false
}

// secretName matches environment variable names that hold credentials.
var secretName = regexp.MustCompile(`(?i)pass|secret|token|key|credential|auth`)

// TestCronJobs: both CronJobs run weekly in UTC, one at a time, bounded in
// time, as a non-root user on a read-only root filesystem with every
// capability dropped, and put no secret in their manifests.
func TestCronJobs(t *testing.T) {
	for _, tc := range []struct {
		path     string
		schedule string
		args     []string
		failJob  []int32 // exit codes that must fail the Job without retry
	}{
		{backupCronJob, config.DefaultSchedule, []string{"coffer", "backup", "--config", "/etc/coffer/coffer.yaml", "--job", "app"}, []int32{2, 3}},
		{pruneCronJob, "", []string{"coffer", "prune", "--config", "/etc/coffer/coffer.yaml"}, []int32{2}},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			c := loadCronJob(t, tc.path)
			s := c.Spec
			if s.ConcurrencyPolicy != "Forbid" {
				t.Errorf("concurrencyPolicy %q; want Forbid", s.ConcurrencyPolicy)
			}
			if s.TimeZone != "Etc/UTC" {
				t.Errorf("timeZone %q; want Etc/UTC", s.TimeZone)
			}
			if _, err := cron.ParseStandard(s.Schedule); err != nil {
				t.Errorf("schedule %q: %v", s.Schedule, err)
			}
			if tc.schedule != "" && s.Schedule != tc.schedule {
				t.Errorf("schedule %q; want Coffer's default %q", s.Schedule, tc.schedule)
			}
			if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds <= 0 {
				t.Error("startingDeadlineSeconds unset")
			}
			js := s.JobTemplate.Spec
			if js.BackoffLimit == nil {
				t.Error("backoffLimit unset (the default retries six times)")
			}
			if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 ||
				time.Duration(*js.ActiveDeadlineSeconds)*time.Second > time.Duration(config.DefaultRTO) {
				t.Errorf("activeDeadlineSeconds %v; want a bound within the default RTO", js.ActiveDeadlineSeconds)
			}
			var failing []int32
			if js.PodFailurePolicy != nil {
				for _, r := range js.PodFailurePolicy.Rules {
					if r.Action == "FailJob" && r.OnExitCodes != nil && r.OnExitCodes.ContainerName == "coffer" && r.OnExitCodes.Operator == "In" {
						failing = append(failing, r.OnExitCodes.Values...)
					}
				}
			}
			if !slices.Equal(failing, tc.failJob) {
				t.Errorf("podFailurePolicy fails the Job at once on exit codes %v; want %v", failing, tc.failJob)
			}
			pod := js.Template.Spec
			if pod.RestartPolicy != "Never" {
				t.Errorf("restartPolicy %q; want Never (podFailurePolicy requires it)", pod.RestartPolicy)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken not false: Coffer needs no Kubernetes API token")
			}
			psc := pod.SecurityContext
			if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod securityContext.runAsNonRoot not true")
			}
			if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
				t.Error("pod securityContext.runAsUser unset or 0")
			}
			if psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
				t.Error("pod seccompProfile not RuntimeDefault")
			}
			all := append(slices.Clone(pod.InitContainers), pod.Containers...)
			for _, ct := range all {
				sc := ct.SecurityContext
				if sc == nil {
					t.Errorf("container %s: no securityContext", ct.Name)
					continue
				}
				if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Errorf("container %s: runAsNonRoot not true", ct.Name)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: readOnlyRootFilesystem not true", ct.Name)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("container %s: allowPrivilegeEscalation not false", ct.Name)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("container %s: privileged", ct.Name)
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
					t.Errorf("container %s: capabilities %+v; want drop [ALL] and nothing added", ct.Name, sc.Capabilities)
				}
				if sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
					t.Errorf("container %s: seccompProfile not RuntimeDefault", ct.Name)
				}
				if len(ct.EnvFrom) > 0 {
					t.Errorf("container %s: envFrom puts whole Secrets or ConfigMaps into the environment", ct.Name)
				}
				for _, e := range ct.Env {
					switch {
					case e.Value != nil && secretName.MatchString(e.Name):
						t.Errorf("container %s: env %s has its value written in the manifest; use a Secret file or secretKeyRef", ct.Name, e.Name)
					case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && secretName.MatchString(e.Name):
						t.Errorf("container %s: env %s comes from a ConfigMap; credentials belong in a Secret", ct.Name, e.Name)
					case e.Value == nil && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil && e.ValueFrom.ConfigMapKeyRef == nil && e.ValueFrom.FieldRef == nil):
						t.Errorf("container %s: env %s has no value source", ct.Name, e.Name)
					}
				}
			}
			co := c.coffer(t)
			if got := append(slices.Clone(co.Command), co.Args...); !hasPrefix(got, tc.args) {
				t.Errorf("coffer runs %q; want %q", got, tc.args)
			}
			// Writable scratch for a read-only root: state and /tmp.
			for _, dir := range []string{"/var/lib/coffer", "/tmp"} {
				v, ro := c.volumeAt(co, dir)
				if v == nil || v.EmptyDir == nil || ro {
					t.Errorf("%s: want a writable emptyDir mounted there", dir)
				}
			}
			if v, _ := c.volumeAt(co, "/etc/coffer"); v == nil || v.ConfigMap == nil {
				t.Error("/etc/coffer: want the configuration ConfigMap mounted there")
			}
		})
	}
}

func hasPrefix(s, prefix []string) bool {
	return len(s) >= len(prefix) && slices.Equal(s[:len(prefix)], prefix)
}

// envRefRE finds ${VAR} references in a Coffer configuration.
var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// placeholderRecipientRE matches the example's placeholder recipients.
var placeholderRecipientRE = regexp.MustCompile(`age1replace-[a-z-]+`)

// placeholderSigningKeyRE matches the example's placeholder signing
// public key.
var placeholderSigningKeyRE = regexp.MustCompile(`coffer-sign1:replace-[a-z-]+`)

// signingKeyItem is the key of the Secret coffer-credentials that holds
// the manifest signing key (docs/deploy.md).
const signingKeyItem = "signing-key"

// secretKeys returns the keys of the Secret coffer-credentials that reach
// pod: projected by a secret volume (all of them for a volume that lists
// no items) or referenced by a container's env. all reports a volume that
// projects the whole Secret.
func secretKeys(pod *podSpec) (keys []string, all bool) {
	for _, v := range pod.Volumes {
		if v.Secret == nil || v.Secret.SecretName != "coffer-credentials" {
			continue
		}
		if len(v.Secret.Items) == 0 {
			all = true
		}
		for _, it := range v.Secret.Items {
			keys = append(keys, it.Key)
		}
	}
	for _, ct := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "coffer-credentials" {
				keys = append(keys, e.ValueFrom.SecretKeyRef.Key)
			}
		}
	}
	return keys, all
}

// TestCronJobSecretsReachCoffer plays each CronJob's pod on this machine:
// the Secret's files as Kubernetes mounts them (0440, group-readable with
// fsGroup), the init container's own command copying them, the ${VAR}s
// its env provides, and the example ConfigMap's coffer.yaml, mounted with
// the ConfigMap's default mode 0644. Coffer must load that configuration
// and see every secret: a key renamed in one place and not the other, a
// missing mount or a mode Coffer refuses fails here. The backup pod must
// hold the manifest signing key where signing.key_file says; the prune pod
// must not hold it anywhere, and must still trust the signing public key.
func TestCronJobSecretsReachCoffer(t *testing.T) {
	var cm configMap
	decodeStrict(t, configMapSample, &cm)
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		t.Fatalf("%s: %s %s; want v1 ConfigMap", configMapSample, cm.APIVersion, cm.Kind)
	}
	cfgText, ok := cm.Data["coffer.yaml"]
	if !ok {
		t.Fatalf("%s: no coffer.yaml key", configMapSample)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if !placeholderRecipientRE.MatchString(cfgText) {
		t.Fatalf("%s: no placeholder recipient to fill in", configMapSample)
	}
	cfgText = placeholderRecipientRE.ReplaceAllString(cfgText, id.Recipient().String())
	signingKeyFile, signingPub, err := sign.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !placeholderSigningKeyRE.MatchString(cfgText) {
		t.Fatalf("%s: no placeholder signing public key to fill in", configMapSample)
	}
	cfgText = placeholderSigningKeyRE.ReplaceAllString(cfgText, signingPub.String())

	for _, tc := range []struct {
		path  string
		signs bool // the pod makes backups: it needs the signing key
	}{
		{backupCronJob, true},
		{pruneCronJob, false},
	} {
		path := tc.path
		t.Run(filepath.Base(path), func(t *testing.T) {
			c := loadCronJob(t, path)
			pod := c.Spec.JobTemplate.Spec.Template.Spec

			// Least privilege: the signing key reaches backup pods only.
			keys, all := secretKeys(&pod)
			has := all || slices.Contains(keys, signingKeyItem)
			switch {
			case tc.signs && !has:
				t.Errorf("the pod gets Secret keys %q; want %s too: backups must sign their manifests", keys, signingKeyItem)
			case !tc.signs && all:
				t.Errorf("a secret volume projects every key of coffer-credentials, %s included; list the items this pod needs", signingKeyItem)
			case !tc.signs && has:
				t.Errorf("the pod gets Secret key %s; it never signs and must not hold the private signing key", signingKeyItem)
			}
			root := t.TempDir() // stands for the pod's file system
			host := func(p string) string { return filepath.Join(root, p) }

			// The Secret's files, as the kubelet writes them.
			if len(pod.InitContainers) != 1 {
				t.Fatalf("want one init container (copying the secrets), got %d", len(pod.InitContainers))
			}
			initC := &pod.InitContainers[0]
			values := map[string]string{}
			for _, m := range initC.VolumeMounts {
				v, _ := c.volumeAt(initC, m.MountPath)
				if v == nil {
					t.Fatalf("init container mounts unknown volume %s", m.Name)
				}
				if err := os.MkdirAll(host(m.MountPath), 0o777); err != nil {
					t.Fatal(err)
				}
				if v.Secret == nil {
					continue
				}
				if v.Secret.SecretName != "coffer-credentials" {
					t.Errorf("secret volume from %q; want coffer-credentials", v.Secret.SecretName)
				}
				for _, it := range v.Secret.Items {
					content := []byte("value of " + it.Key + "\n")
					if it.Key == signingKeyItem {
						content = signingKeyFile
					} else {
						values[it.Key] = "value of " + it.Key
					}
					p := host(filepath.Join(m.MountPath, it.Path))
					if err := os.WriteFile(p, content, 0o440); err != nil {
						t.Fatal(err)
					}
					if err := os.Chmod(p, 0o440); err != nil { // past the umask
						t.Fatal(err)
					}
				}
			}
			// The init container's command, on this machine's coreutils.
			argv := slices.Clone(initC.Command)
			for i, a := range argv {
				if strings.HasPrefix(a, "/") {
					argv[i] = host(a)
				}
			}
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("init container %q: %v\n%s", initC.Command, err, out)
			}

			// The environment the coffer container gets from the Secret.
			co := c.coffer(t)
			for _, e := range co.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					if ref.Name != "coffer-credentials" {
						t.Errorf("env %s from Secret %q; want coffer-credentials", e.Name, ref.Name)
					}
					values[ref.Key] = "value of " + ref.Key
					t.Setenv(e.Name, values[ref.Key])
				}
			}
			for _, m := range envRefRE.FindAllStringSubmatch(cfgText, -1) {
				if !slices.ContainsFunc(co.Env, func(e envVar) bool { return e.Name == m[1] }) {
					t.Errorf("coffer.yaml uses ${%s}; the coffer container does not set it", m[1])
				}
			}

			// coffer.yaml where the coffer container finds it, with every
			// absolute path it names moved under root.
			cfgDir := "/etc/coffer"
			if v, _ := c.volumeAt(co, cfgDir); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name {
				t.Fatalf("%s is not the ConfigMap %s", cfgDir, cm.Metadata.Name)
			}
			text := regexp.MustCompile(`(_file:\s*)(/\S+)`).ReplaceAllStringFunc(cfgText, func(s string) string {
				i := strings.Index(s, "/")
				dir := filepath.Dir(s[i:])
				if v, _ := c.volumeAt(co, dir); v == nil {
					t.Errorf("coffer.yaml reads %s; nothing is mounted at %s in the coffer container", s[i:], dir)
				}
				return s[:i] + host(s[i:])
			})
			cfgPath := host(filepath.Join(cfgDir, "coffer.yaml"))
			if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfgPath, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				t.Fatalf("Coffer refuses the ConfigMap's coffer.yaml in this pod:\n%v", err)
			}

			// Every secret arrived intact.
			got := map[string]string{}
			for _, name := range cfg.DestinationOrder {
				d := cfg.Destinations[name]
				got[name+" access key id"] = d.AccessKeyID
				got[name+" secret access key"] = d.SecretAccessKey.Reveal()
			}
			for _, name := range cfg.JobOrder {
				got[name+" db password"] = cfg.Jobs[name].Source.Password.Reveal()
			}
			for what, v := range got {
				if !strings.HasPrefix(v, "value of ") || values[strings.TrimPrefix(v, "value of ")] != v {
					t.Errorf("%s = %q; want the value from the Secret", what, v)
				}
			}
			if job, ok := flagValue(co.Command, "--job"); ok && cfg.Jobs[job] == nil {
				t.Errorf("the CronJob backs up job %q; coffer.yaml has no such job", job)
			}
			if v, ro := c.volumeAt(co, cfg.Daemon.StateDir); v == nil || v.EmptyDir == nil || ro {
				t.Errorf("daemon.state_dir %q is not the writable emptyDir", cfg.Daemon.StateDir)
			}

			// Every pod trusts the signing key (reading commands refuse
			// without one); only the backup pod can sign.
			if pk := cfg.Signing.PublicKeys; len(pk) != 1 || !pk[0].Equal(signingPub) {
				t.Errorf("signing.public_keys %v; want exactly the signing key's public key %s", pk, signingPub)
			}
			signer, err := cfg.Signing.Signer()
			if tc.signs {
				switch {
				case err != nil:
					t.Errorf("coffer backup cannot load its signing key in this pod: %v", err)
				case !signer.Public().Equal(signingPub):
					t.Errorf("the pod signs with key %s; want the key from the Secret, %s", signer.Public().ID(), signingPub.ID())
				}
			} else {
				if err == nil || !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("signing.key_file %s in the prune pod: got %v; want a file that does not exist", cfg.Signing.KeyFile, err)
				}
			}
		})
	}
}

// TestCommandsAcceptedByCoffer builds coffer and asks it for help with
// each command line the units and CronJobs run: a subcommand or flag the
// CLI does not have fails with exit 2.
func TestCommandsAcceptedByCoffer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coffer binary")
	}
	bin := filepath.Join(t.TempDir(), "coffer")
	build := exec.Command("go", "build", "-o", bin, "../cmd/coffer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var lines [][]string
	for _, path := range serviceUnits {
		u := parseUnit(t, path)
		args := execArgs(t, u, "ExecStart")
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "%i", "app")
		}
		lines = append(lines, args)
	}
	for _, path := range []string{backupCronJob, pruneCronJob} {
		co := loadCronJob(t, path).coffer(t)
		lines = append(lines, append(slices.Clone(co.Command), co.Args...))
	}
	for _, args := range lines {
		cmd := exec.Command(bin, append(slices.Clone(args[1:]), "--help")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("coffer %s: %v\n%s", strings.Join(args[1:], " "), err, out)
		}
	}
}
