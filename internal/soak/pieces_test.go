//go:build soak

package soak

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDrawReplays: the same seed gives the same fault plans.
func TestDrawReplays(t *testing.T) {
	plans := func(seed uint64) string {
		r := rand.New(rand.NewPCG(seed, 1))
		var b bytes.Buffer
		for c := 1; c <= 300; c++ {
			fmt.Fprintln(&b, draw(r, c))
		}
		return b.String()
	}
	if a, b := plans(99), plans(99); a != b {
		t.Fatal("seed 99 drew two different plan sequences")
	}
	if plans(99) == plans(100) {
		t.Fatal("seeds 99 and 100 drew the same plans")
	}
}

// TestDumpIsDeterministic: a dump names its seed and generation, and the
// same pair always gives the same bytes.
func TestDumpIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	sumA, size, err := writeDump(&a, 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	sumB, _, _ := writeDump(&b, 7, 3)
	h := sha256.Sum256(a.Bytes())
	if sumA != sumB || sumA != hex.EncodeToString(h[:]) || int64(a.Len()) != size {
		t.Fatalf("dump (7, 3) not deterministic: %s %s, %d bytes of %d", sumA, sumB, a.Len(), size)
	}
	path := filepath.Join(t.TempDir(), "d")
	os.WriteFile(path, a.Bytes(), 0o600)
	seed, gen, err := dumpIdentity(path)
	if err != nil || seed != 7 || gen != 3 {
		t.Fatalf("dumpIdentity = %d, %d, %v", seed, gen, err)
	}
}

// TestRunsOf: runs are found in a daemon log in order, failures before a
// backup id included.
func TestRunsOf(t *testing.T) {
	ts := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	lines := []logLine{
		{TS: ts, Msg: "backup started", Trigger: "catch-up", Backup: "a"},
		{TS: ts, Msg: "backup finished"},
		{TS: ts.Add(5 * time.Second), Msg: "backup started", Trigger: "schedule", Backup: "b"},
		{TS: ts.Add(6 * time.Second), Msg: "backup failed", Trigger: "schedule"},
		{TS: ts.Add(10 * time.Second), Msg: "backup failed", Trigger: "schedule"},
		{TS: ts.Add(15 * time.Second), Msg: "cycle failed", Trigger: "schedule"},
	}
	got := runsOf(lines)
	want := []run{{"catch-up", "a", ts}, {"schedule", "b", ts.Add(5 * time.Second)}, {"schedule", "", ts.Add(10 * time.Second)}, {"schedule", "", ts.Add(15 * time.Second)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("runsOf = %v, want %v", got, want)
	}
}
