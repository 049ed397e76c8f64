package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/restore"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var job, id, identity, passFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --job NAME [--id ID] [--identity FILE]",
		Short: "Read a backup back at every destination and check it, loading nothing",
		Long: `Check the newest backup of a job (or --id) at every destination of the job.
With --identity, the whole restore read path runs: age decryption and
authentication, zstd decoding, and the plaintext and payload SHA-256 and
sizes against the manifest. Without it, the payload's size, age header and
SHA-256 are checked (no private key needed on a backup host).
Exit 1 when any destination fails its check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			jobs, err := selectJobs(cfg, job, false)
			if err != nil {
				return err
			}
			ids, err := loadIdentities(identity, passFile, false)
			if err != nil {
				return err
			}
			stores, err := openStores(cmd.Context(), cfg, jobs[0], "")
			if err != nil {
				return err
			}
			checks, err := restore.Verify(cmd.Context(), job, id, stores, ids)
			if err != nil {
				return err
			}
			failed := 0
			for _, c := range checks {
				if !c.OK {
					failed++
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(checks); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "JOB\tBACKUP\tDESTINATION\tRESULT\tCHECKED\tDETAIL")
				for _, c := range checks {
					res, detail := "ok", humanBytes(c.Bytes)+" in "+c.Duration.Round(1e6).String()
					if len(c.OpenedBy) > 0 {
						detail += "; opened by " + strings.Join(c.OpenedBy, ", ")
					}
					if !c.OK {
						res, detail = "FAILED", c.Error
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Job, c.ID, c.Destination, res, c.Level, detail)
				}
				w.Flush()
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d destinations failed verification", failed, len(checks))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&job, "job", "j", "", "job whose backup to verify (required)")
	cmd.Flags().StringVar(&id, "id", "", "backup id (default: the newest)")
	cmd.Flags().StringVarP(&identity, "identity", "i", "", "age identity file for a full check (env COFFER_IDENTITY)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file (mode 0600) holding the passphrase of a protected identity file (env COFFER_PASSPHRASE_FILE; default: ask on the terminal)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
