package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Back up, list, verify, restore and drill a sample SQLite database, with no service or network",
		Long: `Create a sample SQLite database, an age identity, a manifest signing key and
a configuration in DIR,
with two local directories standing in for the primary and offsite buckets;
then run the real commands: backup, list, verify, restore, a timed restore
drill from the offsite copy and status, and compare the restored database
with the original table by table. Run it again to
add another backup. Every file stays in DIR for you to look at.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := demo.NewPaths(dir)
			if err != nil {
				return err
			}
			if err := demo.Setup(cmd.Context(), p); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			steps := [][]string{
				{"config", "check"},
				{"backup", "--job", "music-hub"},
				{"list"},
				{"verify", "--job", "music-hub", "--identity", p.Identity},
				{"restore", "--job", "music-hub", "--latest", "--identity", p.Identity, "--target", p.Restored, "--force"},
				{"drill", "--job", "music-hub"},
				{"status"},
			}
			for _, args := range steps {
				fmt.Fprintf(out, "\n$ coffer %s\n", strings.Join(args, " "))
				root := newRoot()
				root.SetArgs(append(args, "--config", p.Config, "--log-format", g.logFormat))
				root.SetOut(out)
				root.SetErr(cmd.ErrOrStderr())
				if err := root.ExecuteContext(cmd.Context()); err != nil {
					return fmt.Errorf("demo step 'coffer %s': %w", strings.Join(args, " "), err)
				}
			}
			return compareDemo(cmd, p)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "coffer-demo", "folder for the demo's files")
	return cmd
}

// compareDemo checks the restored database against the original and tells
// the user where everything is.
func compareDemo(cmd *cobra.Command, p demo.Paths) error {
	out := cmd.OutOrStdout()
	want, err := demo.TableDigests(cmd.Context(), p.Database)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.Database, err)
	}
	got, err := demo.TableDigests(cmd.Context(), p.Restored)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.Restored, err)
	}
	fmt.Fprintf(out, "\nrestored database compared with the original, table by table:\n")
	for _, t := range slices.Sorted(maps.Keys(want)) {
		status := "same"
		if got[t] != want[t] {
			status = "DIFFERENT: " + got[t]
		}
		fmt.Fprintf(out, "  %-10s %s  %s\n", t, want[t], status)
	}
	if !maps.Equal(want, got) {
		return fmt.Errorf("restored database differs from the original")
	}
	fmt.Fprintf(out, `
Where everything is:
  configuration     %s
  age identity      %s   (private key, mode 0600)
  signing key       %s   (private key, mode 0600)
  sample database   %s
  primary "bucket"  %s
  offsite "bucket"  %s
  restored copy     %s

Try it yourself (make build writes bin/coffer, built with Go 1.27.3):
  make build
  bin/coffer list --config %s
  bin/coffer verify --config %s --job music-hub --identity %s
Or restore without Coffer, with the stock tools:
  age -d -i %s %s/music-hub/<backup-id>/payload.sqlite.zst.age | zstd -d > restored.db
`, p.Config, p.Identity, p.SigningKey, p.Database, p.Primary, p.Offsite, p.Restored, p.Config, p.Config, p.Identity, p.Identity, p.Primary)
	return nil
}
