package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/seal"
)

func newKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen -o FILE",
		Short: "Create an age identity (private key file, mode 0600) and print its public key",
		Long: `Create a new age X25519 identity in FILE (mode 0600, never overwritten) and
print its public key ("age1...") on stdout. Put the public key under
recipients in coffer.yaml; keep FILE on restore hosts and offline. The file
is a standard age identity: 'age -d -i FILE' reads it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr(errors.New("-o FILE is required: the private key is never printed"))
			}
			data, recipient, err := seal.GenerateIdentity(time.Now())
			if err != nil {
				return err
			}
			if err := seal.WriteSecretFile(out, data); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), recipient)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote identity to %s (mode 0600); public key above goes under recipients:\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "identity file to create")
	return cmd
}
