package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command: no service, no network.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	for run := 1; run <= 2; run++ { // a second run adds a second backup
		out, _, code := runCmd(t, nil, nil, cofferBin, "demo", "--dir", dir)
		if code != 0 {
			t.Fatalf("demo run %d: exit %d", run, code)
		}
		for _, want := range []string{"same", "primary \"bucket\"", filepath.Join(dir, "identity.txt"), "age -d -i", "of job music-hub: passed", "last drill"} {
			if !strings.Contains(out, want) {
				t.Errorf("demo output lacks %q", want)
			}
		}
		if strings.Contains(out, "DIFFERENT") {
			t.Fatalf("demo restore differs:\n%s", out)
		}
	}
	out, _, code := runCmd(t, nil, nil, cofferBin, "list", "--json", "--config", filepath.Join(dir, "coffer.yaml"))
	var l struct {
		Backups []struct{ Destinations []string } `json:"backups"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 2 {
		t.Fatalf("after two demo runs, list --json: exit %d, %s", code, out)
	}
	st, err := os.Stat(filepath.Join(dir, "identity.txt"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("demo identity: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
}

// TestBadConfigExitsTwo checks that a configuration error is exit 2 and
// names the file, line and field, in text and in JSON.
func TestBadConfigExitsTwo(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "coffer.yaml")
	os.WriteFile(cfg, []byte(`recipients: [age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq]
destinations:
  primary: {type: local, path: /tmp/x}
jobs:
  app:
    source: {type: postgress, database: app}
`), 0o600)
	_, stderr, code := runCmd(t, nil, nil, cofferBin, "config", "check", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, "coffer.yaml:6") || !strings.Contains(stderr, "jobs.app.source.type") {
		t.Fatalf("config check: exit %d, stderr %q; want exit 2 naming coffer.yaml:6 and jobs.app.source.type", code, stderr)
	}
	out, _, code := runCmd(t, nil, nil, cofferBin, "config", "check", "--json", "--config", cfg)
	var res struct {
		Valid  bool
		Errors []struct {
			Line  int
			Field string
		}
	}
	if code != 2 || json.Unmarshal([]byte(out), &res) != nil || res.Valid || len(res.Errors) == 0 || res.Errors[0].Field != "jobs.app.source.type" {
		t.Fatalf("config check --json: exit %d, %s", code, out)
	}
	if _, _, code := runCmd(t, nil, nil, cofferBin, "backup", "--job", "app", "--config", cfg); code != 2 {
		t.Fatalf("backup with a bad config: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, nil, nil, cofferBin, "backup", "--no-such-flag"); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}
