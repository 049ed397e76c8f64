package main

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/retention"
)

// orderDests is how many destinations the order tests use: enough that
// two runs in Go's random map order agree by chance with odds far below
// one in a million.
const orderDests = 16

// linesWith returns the lines of out that contain marker, trimmed, and
// fails unless there are want of them.
func linesWith(t *testing.T, out, marker string, want int) []string {
	t.Helper()
	var lines []string
	for l := range strings.Lines(out) {
		if strings.Contains(l, marker) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) != want {
		t.Fatalf("%d lines with %q, want %d:\n%s", len(lines), marker, want, out)
	}
	return lines
}

// inOrder checks that lines are ordered as cmp says.
func inOrder(t *testing.T, what string, lines []string, cmp func(a, b string) int) {
	t.Helper()
	if !slices.IsSortedFunc(lines, cmp) {
		t.Errorf("%s out of order:\n%s", what, strings.Join(lines, "\n"))
	}
}

// TestPrintPruneOrder: a prune prints its items by destination in the
// job's order, each destination's backups newest first, whatever order
// prune decided them in, and the destinations it refused (a map) in the
// same order: the same every time.
func TestPrintPruneOrder(t *testing.T) {
	var dests []string // the job's order: not name order
	for i := orderDests - 1; i >= 0; i-- {
		dests = append(dests, fmt.Sprintf("d%02d", i))
	}
	res := &prune.Result{Job: "app", Refused: map[string]string{}}
	t0 := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	for _, dest := range dests {
		res.Refused[dest] = "cannot read the destination's time"
		for b := range 3 {
			at := t0.Add(time.Duration(b) * 24 * time.Hour)
			res.Items = append(res.Items, prune.Item{Destination: dest, ID: manifest.NewID(at), Time: at, Keep: true,
				Rule: retention.RuleWithin, Reason: "within keep_within", Outcome: prune.OutcomeKept})
		}
	}
	rand.Shuffle(len(res.Items), func(i, j int) { res.Items[i], res.Items[j] = res.Items[j], res.Items[i] })
	rank := func(line string) int { return slices.Index(dests, strings.TrimSuffix(strings.Fields(line)[0], ":")) }
	var first string
	for run := range 3 {
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetOut(&out)
		printPrune(cmd, res, dests)
		inOrder(t, "refused destinations", linesWith(t, out.String(), "NOT PRUNED", orderDests), func(a, b string) int {
			return cmp.Compare(rank(a), rank(b))
		})
		inOrder(t, "items", linesWith(t, out.String(), "within keep_within", 3*orderDests), func(a, b string) int {
			return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(strings.Fields(b)[1], strings.Fields(a)[1]))
		})
		if run == 0 {
			first = out.String()
		} else if out.String() != first {
			t.Fatalf("run %d printed\n%s\nrun 0 printed\n%s", run, out.String(), first)
		}
	}
}

// TestStatusOrder: a job whose destinations cannot be listed gets its
// problems in destination order, printed the same every time. Each
// destination is a local directory in which the job's folder is a
// symbolic link to itself, which cannot be listed.
func TestStatusOrder(t *testing.T) {
	dir := t.TempDir()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "recipients: [age18amwfsmeuppmnlyt0zs9jwlclknurzzch0969wrd3pkc67q0mglqe2mfcj]\ndestinations:\n")
	for i := orderDests - 1; i >= 0; i-- { // file order is not name order
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("app", filepath.Join(d, "app")); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&yaml, "  d%02d: {type: local, path: %s}\n", i, d)
	}
	yaml.WriteString("jobs:\n  app:\n    source: {type: sqlite, path: /srv/app.db}\n")
	cfg, err := config.Parse(filepath.Join(dir, "coffer.yaml"), []byte(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var first string
	for run := range 3 {
		st, err := statusOf(t.Context(), cfg, cfg.Jobs["app"], now)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		printStatus(&out, st, now)
		inOrder(t, "unreachable destinations", linesWith(t, out.String(), "unreachable", orderDests), strings.Compare)
		if run == 0 {
			first = out.String()
		} else if out.String() != first {
			t.Fatalf("run %d printed\n%s\nrun 0 printed\n%s", run, out.String(), first)
		}
	}
}
