package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(newConfigCheckCmd(g))
	return cmd
}

// configCheckOutput is `coffer config check --json`.
type configCheckOutput struct {
	Valid  bool                 `json:"valid"`
	Errors []*config.FieldError `json:"errors"`
	Config *config.Config       `json:"config,omitempty"`
}

func newConfigCheckCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and show it with defaults applied and secrets redacted",
		Long: `Load and validate the configuration file. Every problem is reported as
file:line: field: problem. On success, the effective configuration (with
defaults applied, secrets shown as [redacted]) is printed.
Exit 2 when the configuration is invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(g.configPath)
			out := configCheckOutput{Valid: err == nil, Errors: []*config.FieldError{}, Config: cfg}
			if err != nil {
				out.Errors = config.FieldErrors(err)
				if len(out.Errors) == 0 { // e.g. the file cannot be read
					out.Errors = []*config.FieldError{{File: g.configPath, Msg: err.Error()}}
				}
			}
			if asJSON {
				if jerr := writeJSON(cmd.OutOrStdout(), out); jerr != nil {
					return jerr
				}
			} else if err == nil {
				printConfig(cmd, cfg)
			}
			if err != nil {
				if asJSON {
					return &exitError{code: exitUsage, err: fmt.Errorf("%s: %d problem(s)", g.configPath, len(out.Errors))}
				}
				return usageErr(err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printConfig(cmd *cobra.Command, cfg *config.Config) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s: ok\n", cfg.Path)
	fmt.Fprintln(w, "destinations:")
	for _, n := range cfg.DestinationOrder {
		d := cfg.Destinations[n]
		where := d.Path
		if d.Type == "s3" {
			where = "s3://" + d.Bucket + "/" + d.Prefix
			if d.Endpoint != "" {
				where += " at " + d.Endpoint
			}
		}
		fmt.Fprintf(w, "  %-10s %-5s %s\n", n, d.Type, where)
	}
	switch sg := cfg.Signing; {
	case sg.KeyFile != "":
		fmt.Fprintf(w, "signing: key %s, %d trusted public key(s)\n", sg.KeyFile, len(sg.PublicKeys))
	case len(sg.PublicKeys) > 0:
		fmt.Fprintf(w, "signing: no key_file (this host cannot back up), %d trusted public key(s)\n", len(sg.PublicKeys))
	default:
		fmt.Fprintln(w, "signing: none: backups and reads will be refused (see docs/config.md, signing)")
	}
	fmt.Fprintln(w, "jobs:")
	for _, n := range cfg.JobOrder {
		j := cfg.Jobs[n]
		fmt.Fprintf(w, "  %s: %s %s -> %s\n", n, j.Source.Type, j.Source.Database+j.Source.Path+strings.Join(j.Source.Command, " "), strings.Join(j.Destinations, ", "))
		fmt.Fprintf(w, "    schedule %q (%s), keep %s (min %d), rto %s, zstd level %d, %d recipient(s)\n",
			j.Schedule, j.Timezone, j.Retention.KeepWithin, j.Retention.MinKeep, j.RTO, j.Compression.Level, len(j.Recipients))
	}
}
