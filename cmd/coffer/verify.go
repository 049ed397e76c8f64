package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/rollback"
	"github.com/coffer-backup/coffer/restore"
)

type verifyFlags struct {
	identityFlags
	job, id               string
	asJSON, skipSignature bool
}

func newVerifyCmd(g *globals) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify --job NAME [--id ID] [--identity FILE]",
		Short: "Read a backup back at every destination and check it, loading nothing",
		Long: `Check the newest backup of a job (or --id) at every destination of the job.
The newest is the newest backup whose manifest verifies (signature with a
key in signing.public_keys, and it describes the backup its key names) and
whose payload is whole somewhere: a planted or forged manifest key is never
chosen. Every manifest key that is not used is listed with its reason
(text: after the checks; --json: each check's "untrusted", for its
destination), as is a verified manifest whose payload is missing or short
("incomplete").
With --identity, the whole restore read path runs: age decryption and
authentication, zstd decoding, and the plaintext and payload SHA-256 and
sizes against the manifest. Without it, the payload's size, age header and
SHA-256 are checked (no private key needed on a backup host).

Checking the newest backup also compares its sequence number with the
highest this host has seen for the job (in the state directory, seen.json):
a lower one is a possible rollback (newer backups deleted or hidden), and
is warned about on stderr and in each check's "warnings" (--json).

--insecure-skip-signature checks manifests whose signature is missing or
fails anyway, with a warning for each; for emergencies only.
Exit 1 when any destination fails its check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, g, f) },
	}
	cmd.Flags().StringVarP(&f.job, "job", "j", "", "job whose backup to verify (required)")
	cmd.Flags().StringVar(&f.id, "id", "", "backup id (default: the newest)")
	f.identityFlags.register(cmd, "age identity file for a full check (env COFFER_IDENTITY)", passphraseHelp)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
	skipSignatureFlag(cmd, &f.skipSignature)
	return cmd
}

func runVerify(cmd *cobra.Command, g *globals, f *verifyFlags) error {
	cfg, jobs, err := g.loadJobs(f.job, false)
	if err != nil {
		return err
	}
	ids, err := f.load(false)
	if err != nil {
		return err
	}
	log := g.logger()
	defer log.Sync()
	trust, err := readTrust(cfg, f.skipSignature, log)
	if err != nil {
		return err
	}
	stores, err := openStores(cmd.Context(), cfg, jobs[0], "")
	if err != nil {
		return err
	}
	checks, err := restore.Verify(cmd.Context(), f.job, f.id, stores, ids, trust)
	if err != nil {
		return signatureHint(err)
	}
	if f.id == "" {
		// The newest visible backup: compare its sequence with the highest
		// seen. Only manifests whose signature verified count.
		var newest *rollback.Mark
		for _, c := range checks {
			if m := verifiedMark(c.ID, c.Sequence, c.SignedBy); m != nil && (newest == nil || m.Sequence > newest.Sequence) {
				newest = m
			}
		}
		if w := observeNewest(cfg, jobs[0], stores, newest, log); w != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			for i := range checks {
				checks[i].Warnings = append(checks[i].Warnings, w.String())
			}
		}
	}
	failed := 0
	for _, c := range checks {
		if !c.OK {
			failed++
		}
	}
	if f.asJSON {
		if err := writeJSON(cmd.OutOrStdout(), checks); err != nil {
			return err
		}
	} else {
		printChecks(cmd, checks)
		var us []untrustedKey
		var ins []incompleteKey
		for _, c := range checks {
			for _, u := range c.Untrusted {
				us = append(us, untrustedKey{c.Job, u})
			}
			for _, in := range c.Incomplete {
				ins = append(ins, incompleteKey{c.Job, in})
			}
		}
		printProblems(cmd.OutOrStdout(), us, ins)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d destinations failed verification", failed, len(checks))
	}
	return nil
}

func printChecks(cmd *cobra.Command, checks []restore.Check) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tBACKUP\tDESTINATION\tRESULT\tCHECKED\tDETAIL")
	for _, c := range checks {
		res, detail := "ok", humanBytes(c.Bytes)+" in "+human.Duration(c.Duration)
		if c.SignedBy != "" {
			detail += fmt.Sprintf("; seq %d signed by %s", c.Sequence, c.SignedBy)
		}
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
