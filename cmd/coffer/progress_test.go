package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/backuptest"
)

// stderrLog points the command line's standard error (the log and the
// progress line) at a file for the test and returns a function that
// reads what was written since the previous call, one log line each.
func stderrLog(t *testing.T) func() []string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	old := stderrFile
	stderrFile = f
	t.Cleanup(func() { stderrFile = old; f.Close() })
	var read int64
	return func() []string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		b, read = b[read:], int64(len(b))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// TestProgressOffTerminal: off a terminal (standard error is a file),
// backup, restore and drill with --json print only their JSON on stdout
// and log their progress to standard error at Info, every progressEvery
// (30 s; shortened here), each line naming the phase; a restore's
// download names the destination serving it and counts towards the
// manifest's size.
func TestProgressOffTerminal(t *testing.T) {
	s := backuptest.NewSetup(t, 50000, "")
	stderr := stderrLog(t)
	old := progressEvery
	progressEvery = time.Millisecond
	t.Cleanup(func() { progressEvery = old })

	// progressLines returns the progress lines logged (JSON log lines).
	progressLines := func(what string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, line := range stderr() {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("stderr holds a line that is not a JSON log line: %q", line)
			}
			if e["msg"] != what+" progress" {
				continue
			}
			if e["level"] != "info" || e["phase"] == "" || e["job"] != "app" || e["elapsed"] == "" {
				t.Errorf("progress line %v: want level info, a phase, job app and the time elapsed", e)
			}
			out = append(out, e)
		}
		if len(out) == 0 {
			t.Fatalf("%s: no progress line logged", what)
		}
		return out
	}

	var res backupJSON
	coffer(t, "backup", "--config", s.Config, "--log-format", "json", "--job", "app", "--json").jsonOf(t, exitOK, &res)
	if len(res) != 1 || res[0].Outcome != "ok" {
		t.Fatalf("backup --json: %+v, want one ok backup", res)
	}
	id := res[0].ID
	for _, e := range progressLines("backup") {
		if !strings.HasPrefix(e["phase"].(string), "app: ") {
			t.Errorf("backup progress %v: phase not named after the job", e)
		}
	}

	target := filepath.Join(t.TempDir(), "restored.db")
	var rep struct {
		ID         string `json:"id"`
		PlainBytes int64  `json:"plain_bytes"`
	}
	coffer(t, "restore", "--config", s.Config, "--log-format", "json", "--job", "app", "--identity", s.Identity,
		"--target", target, "--json").jsonOf(t, exitOK, &rep)
	if rep.ID != id {
		t.Fatalf("restore --json: %+v, want backup %s", rep, id)
	}
	downloads := 0
	for _, e := range progressLines("restore") {
		if e["phase"] != "download" {
			continue
		}
		downloads++
		if e["destination"] != "primary" || e["unit"] != "bytes" || e["total"] != float64(rep.PlainBytes) || e["progress"] == "" || e["rate"] == "" {
			t.Errorf("restore progress %v: want the download from primary counting bytes of %d", e, rep.PlainBytes)
		}
	}
	if downloads == 0 {
		t.Error("no progress line for the restore's download")
	}

	var drill struct {
		Result string `json:"result"`
	}
	coffer(t, "drill", "--config", s.Config, "--log-format", "json", "--job", "app", "--json").jsonOf(t, exitOK, &drill)
	if drill.Result != "passed" {
		t.Fatalf("drill --json: %+v, want passed", drill)
	}
	progressLines("drill")
}
