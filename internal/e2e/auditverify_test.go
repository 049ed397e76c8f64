package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage/fs"
)

// TestAuditVerifyCLI runs coffer audit verify on a real trail: a local log
// in the state directory and its objects shipped, with signed heads, to a
// local-directory destination. Intact: exit 0. An edited local event: exit
// 1 naming the event, in text and JSON. A head signed by an untrusted key:
// exit 1, bad_signature. A usage error: exit 2.
func TestAuditVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	primary, offsite := filepath.Join(dir, "primary"), filepath.Join(dir, "offsite")
	keyFile := filepath.Join(dir, "signing.key")
	out, _, code := runCmd(t, nil, nil, cofferBin, "keygen", "-o", filepath.Join(dir, "identity.txt"), "--signing-key", keyFile)
	keys := strings.Fields(out)
	if code != 0 || len(keys) != 2 {
		t.Fatalf("keygen: exit %d, %q", code, out)
	}
	for _, d := range []string{primary, offsite} {
		os.MkdirAll(d, 0o700)
	}
	cfg := filepath.Join(dir, "coffer.yaml")
	os.WriteFile(cfg, []byte("signing:\n  key_file: "+keyFile+"\n  public_keys: ["+keys[1]+"]\n"+
		"recipients: ["+keys[0]+"]\n"+
		"daemon: {state_dir: "+state+"}\n"+
		"destinations:\n  primary: {type: local, path: "+primary+"}\n  offsite: {type: local, path: "+offsite+"}\n"+
		"jobs:\n  app:\n    source: {type: sqlite, path: "+filepath.Join(dir, "app.db")+"}\n"), 0o600)

	// The trail, as the daemon writes and ships it.
	signer, err := sign.LoadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	store, err := fs.New(primary)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	l.SetSigner(signer)
	for range 4 {
		if err := l.Record(audit.Event{Action: audit.ActionBackup, Job: "app", Destination: "primary", Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Ship(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	l.Close()

	out, _, code = runCmd(t, nil, nil, cofferBin, "audit", "verify", "--config", cfg)
	if code != 0 || !strings.Contains(out, "audit trail intact") {
		t.Fatalf("intact trail: exit %d, %q; want 0 and intact", code, out)
	}

	// Edit the second event of the local log.
	logPath := filepath.Join(state, audit.FileName)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(data, []byte("\n"))
	var ev audit.Event
	json.Unmarshal(lines[1], &ev)
	lines[1] = bytes.Replace(lines[1], []byte(`"outcome":"ok"`), []byte(`"outcome":"failed"`), 1)
	os.WriteFile(logPath, bytes.Join(lines, []byte("\n")), 0o600)

	out, stderr, code := runCmd(t, nil, nil, cofferBin, "audit", "verify", "--config", cfg)
	if code != 1 || !strings.Contains(out, "first broken event: "+logPath+" line 2, event "+ev.ID+": edited") ||
		!strings.Contains(stderr, ev.ID) {
		t.Fatalf("edited event: exit %d\n%s%s\nwant exit 1 naming line 2, event %s, edited", code, out, stderr, ev.ID)
	}
	out, _, code = runCmd(t, nil, nil, cofferBin, "audit", "verify", "--json", "--config", cfg)
	var res struct {
		Intact bool
		Trails []struct {
			Trail, Status string
			Problems      []audit.Problem
		}
		Disagreements []audit.Problem
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Intact {
		t.Fatalf("--json: exit %d, %v, %s", code, err, out)
	}
	if p := res.Trails[0].Problems; res.Trails[0].Status != "broken" || len(p) == 0 || p[0].EventID != ev.ID || p[0].Kind != "edited" || p[0].Line != 2 {
		t.Errorf("--json local trail %+v, want broken at line 2, %s, edited", res.Trails[0], ev.ID)
	}
	if len(res.Disagreements) == 0 || res.Disagreements[0].EventID != ev.ID {
		t.Errorf("--json disagreements %+v, want one about %s (local and shipped copies differ)", res.Disagreements, ev.ID)
	}
	// The export does not let the local copy win silently either.
	if _, stderr, code := runCmd(t, nil, nil, cofferBin, "audit", "--since", "0", "--config", cfg); code != 1 || !strings.Contains(stderr, ev.ID) {
		t.Errorf("export with differing copies: exit %d, %q; want 1 naming %s", code, stderr, ev.ID)
	}

	// A trusted-key list without the signer: every head is refused.
	os.WriteFile(logPath, data, 0o600)
	other := filepath.Join(dir, "other.key")
	out, _, _ = runCmd(t, nil, nil, cofferBin, "keygen", "-o", filepath.Join(dir, "other.txt"), "--signing-key", other)
	cfg2 := filepath.Join(dir, "other.yaml")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg2, bytes.Replace(bytes.Replace(raw, []byte(keys[1]), []byte(strings.Fields(out)[1]), 1), []byte(keyFile), []byte(other), 1), 0o600)
	out, _, code = runCmd(t, nil, nil, cofferBin, "audit", "verify", "--config", cfg2)
	if code != 1 || !strings.Contains(out, "bad_signature") {
		t.Errorf("untrusted head: exit %d, %q; want 1 and bad_signature", code, out)
	}

	if _, _, code := runCmd(t, nil, nil, cofferBin, "audit", "verify", "--no-such-flag", "--config", cfg); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, nil, nil, cofferBin, "audit", "verify", "--config", filepath.Join(dir, "missing.yaml")); code != 2 {
		t.Errorf("missing config: exit %d, want 2", code)
	}
}

// TestAuditVerifyAfterPrune: the real commands write and ship the trail
// (backup records locally, prune records and ships to the primary bucket
// with heads signed by signing.key_file), and audit verify finds it
// intact: every shipped object has a verified signed head. A bucket
// writer's edit of a shipped object is then named.
func TestAuditVerifyAfterPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	e.extraEnv = append(e.extraEnv, "STATE_DIRECTORY="+t.TempDir())
	e.sqliteJob("lite", 100)
	e.backup("lite")
	if _, _, code := e.run("prune"); code != 0 {
		t.Fatalf("prune: exit %d", code)
	}
	var objects, heads []string
	for _, k := range e.primary.keys(t) {
		switch {
		case strings.HasPrefix(k, audit.Prefix) && strings.HasSuffix(k, ".jsonl"):
			objects = append(objects, k)
		case strings.HasPrefix(k, audit.Prefix) && strings.HasSuffix(k, ".head.json"):
			heads = append(heads, k)
		}
	}
	if len(objects) == 0 || len(heads) != len(objects) {
		t.Fatalf("primary holds audit objects %v and heads %v; want one head per object", objects, heads)
	}
	out, _, code := e.run("audit", "verify", "--json")
	var res audit.Verification
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.Intact {
		t.Fatalf("audit verify: exit %d, %v\n%s", code, err, out)
	}
	for _, tr := range res.Trails {
		if tr.Trail != "local log" && (tr.SignedHeads != tr.Objects || tr.Status != audit.TrailIntact) {
			t.Errorf("shipped trail %+v: want every head signed and verified", tr)
		}
	}

	// A bucket writer flips an outcome in the shipped object.
	data := e.primary.get(t, objects[0])
	edited := bytes.Replace(data, []byte(`"outcome":"ok"`), []byte(`"outcome":"failed"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("no ok event to edit in %s:\n%s", objects[0], data)
	}
	e.primary.put(t, objects[0], edited)
	out, _, code = e.run("audit", "verify")
	if code != 1 || !strings.Contains(out, objects[0]) || !strings.Contains(out, "edited") {
		t.Errorf("edited shipped object: exit %d\n%s\nwant exit 1 naming %s, edited", code, out, objects[0])
	}
}
