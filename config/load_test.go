package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	// testRecipient and testRecipient2 are public keys of throwaway test
	// identities; testPrivateKey belongs to testRecipient.
	testRecipient  = "age18amwfsmeuppmnlyt0zs9jwlclknurzzch0969wrd3pkc67q0mglqe2mfcj"
	testRecipient2 = "age150uqw9dw5lqnqe9djvzfkwz32eugclhn8shn9nrse7hzksp4jggsuh49qx"
	testPrivateKey = "AGE-SECRET-KEY-16GZURKAZY7EKYDSWPJAPRACH4YCE5PL5T6589C50FSTLDTSK7AZQRV5SNZ"
	// testSigningKey is a manifest signing public key.
	testSigningKey = "coffer-sign1:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
)

// writeFile writes a file with the given mode (chmod after writing, so the
// umask does not interfere) and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadMinimalDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:       "testdata/minimal.yaml",
		Recipients: []string{testRecipient},
		Destinations: map[string]*Destination{
			"primary": {Name: "primary", Type: "s3", Region: "us-east-1", Bucket: "acme-backups"},
			"offsite": {Name: "offsite", Type: "local", Path: "/var/backups/coffer"},
		},
		DestinationOrder: []string{"primary", "offsite"},
		Jobs: map[string]*Job{
			"app": {
				Name:         "app",
				Source:       Source{Type: "postgres", Host: "db.internal", Port: 5432, Database: "app", Format: "custom"},
				Destinations: []string{"primary", "offsite"},
				Recipients:   []string{testRecipient},
				Schedule:     "0 2 * * 0",
				Timezone:     "UTC",
				Compression:  Compression{Level: 3, Threads: runtime.NumCPU()},
				Retention:    Retention{KeepWithin: Duration(28 * 24 * time.Hour), MinKeep: 2},
				RTO:          Duration(8 * time.Hour),

				MaxShrinkPercent: 50,
				StallTimeout:     Duration(5 * time.Minute),
				Drill: Drill{Enabled: true, Schedule: "0 4 1 * *", From: "offsite",
					Target: DrillTarget{Host: "db.internal", Port: 5432}, WarnPercent: 50, MaxAge: Duration(35 * Day)},
			},
		},
		JobOrder: []string{"app"},
		Daemon: Daemon{Listen: "127.0.0.1:9847", MaxConcurrent: 1, ShutdownTimeout: Duration(30 * time.Second),
			LeaseTTL: Duration(2 * time.Minute), LeftoverGrace: Duration(24 * time.Hour), RepairInterval: Duration(time.Hour)},
		Restore: Restore{Jobs: min(runtime.NumCPU(), 8)},
	}
	if err := want.Jobs["app"].Resolve(); err != nil { // the parsed time zone and schedules
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		got, _ := json.MarshalIndent(c, "", "  ")
		exp, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("got\n%s\nwant\n%s", got, exp)
	}
}

// fullEnv sets what testdata/full.yaml refers to and returns the secret
// files' directory.
func fullEnv(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "token", "session-token\n", 0o600)
	writeFile(t, dir, "offsite-secret", "offsite-secret-key\r\n", 0o600)
	writeFile(t, dir, "pgpass", "pg-password\n\n", 0o400)
	t.Setenv("COFFER_TEST_DIR", dir)
	t.Setenv("COFFER_TEST_S3_SECRET", "s3-secret-key")
	t.Setenv("COFFER_TEST_OFFSITE_KEY_ID", "OFFSITEKEYID")
	t.Setenv("COFFER_TEST_MYSQL_PASSWORD", "mysql-password")
	t.Setenv("COFFER_TEST_DRILL_PASSWORD", "drill-password")
	t.Setenv("COFFER_TEST_LEGACY_TOKEN", "legacy-token")
	t.Setenv("COFFER_TEST_WEBHOOK_URL", "https://hooks.example/coffer")
	t.Setenv("COFFER_TEST_PING_URL", "https://hc.example/ping/uuid-secret")
	t.Setenv("COFFER_TEST_SLACK_URL", "https://hooks.slack.example/T0/B0/slack-secret")
	return dir
}

func TestLoadFull(t *testing.T) {
	fullEnv(t)
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.DestinationOrder, []string{"primary", "offsite", "disk"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DestinationOrder = %v, want %v", got, want)
	}
	if got, want := c.JobOrder, []string{"app", "shop", "notes", "legacy"}; !reflect.DeepEqual(got, want) {
		t.Errorf("JobOrder = %v, want %v", got, want)
	}

	p := c.Destinations["primary"]
	if p.Endpoint != "https://s3.eu-central-1.amazonaws.com" || p.Region != "eu-central-1" || p.Prefix != "prod/db" ||
		p.AccessKeyID != "AKIAEXAMPLE" || p.SecretAccessKey.Reveal() != "s3-secret-key" || p.SessionToken.Reveal() != "session-token" || p.PathStyle {
		t.Errorf("primary = %#v (secrets %q %q)", p, p.SecretAccessKey.Reveal(), p.SessionToken.Reveal())
	}
	o := c.Destinations["offsite"]
	if o.ObjectLock == nil || o.ObjectLock.Mode != "compliance" || p.ObjectLock != nil {
		t.Errorf("object_lock: offsite %+v, primary %+v", o.ObjectLock, p.ObjectLock)
	}
	d := c.Daemon
	if d.Listen != "0.0.0.0:9900" || d.Token.Reveal() != "session-token" || !reflect.DeepEqual(d.Allow, []string{"10.0.0.0/8", "127.0.0.1/32"}) ||
		d.MaxConcurrent != 2 || d.StateDir != "/var/lib/coffer-test" || d.ShutdownTimeout.D() != time.Minute || !d.HA ||
		d.LeaseTTL.D() != 90*time.Second || d.LeftoverGrace.D() != 12*time.Hour || d.RepairInterval.D() != 15*time.Minute {
		t.Errorf("daemon = %+v", d)
	}
	n := c.Notify
	if !n.OnSuccess || len(n.Webhooks) != 1 || n.Webhooks[0].Reveal() != "https://hooks.example/coffer" ||
		len(n.Slack) != 1 || n.Slack[0].Reveal() != "https://hooks.slack.example/T0/B0/slack-secret" {
		t.Errorf("notify = %+v", n)
	}
	if !o.PathStyle || o.AccessKeyID != "OFFSITEKEYID" || o.SecretAccessKey.Reveal() != "offsite-secret-key" || o.Region != "fsn1" {
		t.Errorf("offsite = %#v", o)
	}

	app := c.Jobs["app"]
	want := Job{
		Name: "app",
		Source: Source{Type: "postgres", Host: "db.internal", Port: 6432, User: "backup",
			Password: NewSecret("pg-password"), Database: "app", Format: "plain"},
		Destinations: []string{"offsite", "primary"},
		Recipients:   []string{testRecipient2, testRecipient},
		Schedule:     "@daily",
		Timezone:     "Europe/Berlin",
		Compression:  Compression{Level: 19, Threads: 4},
		Retention:    Retention{KeepWithin: Duration(14 * Day), MinKeep: 3, KeepWeekly: 8, KeepMonthly: 12, AllowShort: true},
		RTO:          Duration(90 * time.Minute),
		PingURL:      app.PingURL,

		MaxShrinkPercent: 80,
		StallTimeout:     Duration(5 * time.Minute),
		Drill: Drill{Enabled: true, Schedule: "30 3 * * 6", From: "offsite",
			Target:      DrillTarget{Host: "drill.internal", Port: 5433, User: "drill", Password: NewSecret("drill-password")},
			WarnPercent: 25, MaxAge: Duration(14 * Day),
			Checks: []DrillCheck{{Name: "pupils with a lesson", Query: "SELECT count(*) FROM lessons", Expect: "> 0"}}},
	}
	if err := want.Resolve(); err != nil {
		t.Fatal(err)
	}
	if app.PingURL.Reveal() != "https://hc.example/ping/uuid-secret" {
		t.Errorf("app.ping_url = %q", app.PingURL.Reveal())
	}
	if !reflect.DeepEqual(*app, want) {
		t.Errorf("app = %+v\nwant %+v", *app, want)
	}

	shop := c.Jobs["shop"]
	if shop.Source.Port != 3306 || shop.Source.Password.Reveal() != "mysql-password" || shop.RTO.String() != "2h" ||
		shop.Schedule != DefaultSchedule || !reflect.DeepEqual(shop.Recipients, []string{testRecipient}) {
		t.Errorf("shop = %+v", shop)
	}

	// Merge keys bring the anchored settings.
	notes := c.Jobs["notes"]
	if notes.Schedule != "30 1 * * *" || notes.Timezone != "Europe/Berlin" || notes.Source.Path != "/srv/notes/notes.db" {
		t.Errorf("notes = %+v", notes)
	}
	legacy := c.Jobs["legacy"]
	if legacy.Schedule != "@every 6h" || legacy.Timezone != "Europe/Berlin" || legacy.Source.Extension != "sql" ||
		!reflect.DeepEqual(legacy.Source.Command, []string{"/usr/local/bin/dump-legacy", "--all", "price: ${PRICE}"}) ||
		legacy.Source.Env["LEGACY_TOKEN"].Reveal() != "legacy-token" {
		t.Errorf("legacy = %+v", legacy)
	}

	// No secret survives JSON encoding of the whole configuration.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3-secret-key", "session-token", "offsite-secret-key", "pg-password", "mysql-password", "legacy-token", "uuid-secret", "slack-secret"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("JSON holds %q: %s", secret, b)
		}
	}
	if !strings.Contains(string(b), `"rto":"1h30m"`) || !strings.Contains(string(b), `"keep_within":"14d"`) {
		t.Errorf("durations in JSON: %s", b)
	}
}

func TestLoadFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits")
	}
	t.Setenv("COFFER_TEST_PW", "from-env")
	cfg := func(password string) string {
		return "recipients: [" + testRecipient + "]\n" +
			"destinations:\n  d: {type: local, path: /backups}\n" +
			"jobs:\n  app:\n    source: {type: postgres, database: app, password: " + password + "}\n"
	}
	for _, tc := range []struct {
		name     string
		password string
		mode     os.FileMode
		wantErr  string
	}{
		{"inline secret, 0600", "hunter2", 0o600, ""},
		{"inline secret, 0640", "hunter2", 0o640, "cfg.yaml:6: jobs.app.source.password: secret written inline in a file readable by group or others (mode 0640); fix: chmod 600 "},
		{"inline secret, 0644", "hunter2", 0o644, "or use a ${VAR} reference or password_file"},
		{"reference, 0644", `"${COFFER_TEST_PW}"`, 0o644, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "cfg.yaml", cfg(tc.password), tc.mode)
			c, err := Load(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Path != path {
					t.Errorf("Path = %q", c.Path)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !os.IsNotExist(err) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
	if FieldErrors(err) != nil {
		t.Errorf("FieldErrors of a file system error: %v", FieldErrors(err))
	}
}

func TestSecretFileRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pw", "secret\n", 0o600)
	path := writeFile(t, dir, "coffer.yaml", "recipients: ["+testRecipient+"]\n"+
		"destinations:\n  d: {type: local, path: /backups}\n"+
		"jobs:\n  app:\n    source: {type: mysql, database: app, password_file: pw}\n", 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Jobs["app"].Source.Password.Reveal(); got != "secret" {
		t.Errorf("password = %q", got)
	}
	if c.Jobs["app"].Source.Port != 0 {
		t.Errorf("port defaulted without a host: %d", c.Jobs["app"].Source.Port)
	}
}

// TestMergeBomb checks that merge keys nesting anchors do not take
// exponential time.
func TestMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 {schedule: \"@daily\"}\n")
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("recipients: [" + testRecipient + "]\ndestinations:\n  d: {type: local, path: /b}\n")
	b.WriteString("jobs:\n  app:\n    <<: *a60\n    source: {type: sqlite, path: /db}\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := Parse("bomb.yaml", []byte(b.String()))
		if err != nil {
			t.Error(err)
			return
		}
		if c.Jobs["app"].Schedule != "@daily" {
			t.Errorf("schedule = %q", c.Jobs["app"].Schedule)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Parse still running after 10s")
	}
}

// TestExampleConfig keeps coffer.example.yaml valid: with its recipient
// placeholders replaced and its variables set, it loads.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../coffer.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// As shipped, the placeholders are refused.
	if _, err := Parse("coffer.example.yaml", data); err == nil || !strings.Contains(err.Error(), "recipients[0]: invalid age recipient") {
		t.Errorf("placeholders accepted: %v", err)
	}
	for _, v := range []string{"COFFER_PRIMARY_ACCESS_KEY_ID", "COFFER_PRIMARY_SECRET_ACCESS_KEY",
		"COFFER_OFFSITE_ACCESS_KEY_ID", "COFFER_OFFSITE_SECRET_ACCESS_KEY", "COFFER_APP_DB_PASSWORD"} {
		t.Setenv(v, "value-of-"+v)
	}
	src := strings.NewReplacer(
		"age1replace-with-the-ops-team-public-key", testRecipient,
		"age1replace-with-the-offline-break-glass-public-key", testRecipient2,
		"coffer-sign1:replace-with-the-signing-public-key", testSigningKey,
	).Replace(string(data))
	c, err := Parse("coffer.example.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	app := c.Jobs["app"]
	if len(c.Signing.PublicKeys) != 1 || c.Signing.PublicKeys[0].String() != testSigningKey {
		t.Errorf("example's signing keys: %v", c.Signing.PublicKeys)
	}
	if app.Source.Password.Reveal() != "value-of-COFFER_APP_DB_PASSWORD" || len(app.Recipients) != 2 ||
		c.Destinations["offsite"].Endpoint == "" || app.Timezone != "Europe/Berlin" {
		t.Errorf("example loaded as %+v", app)
	}
}
