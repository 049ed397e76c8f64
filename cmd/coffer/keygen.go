package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
)

func newKeygenCmd() *cobra.Command {
	var out, signingKey string
	cmd := &cobra.Command{
		Use:   "keygen [-o IDENTITY] [--signing-key FILE]",
		Short: "Create an age identity and/or a manifest signing key (files mode 0600) and print their public keys",
		Long: `Create key files (mode 0600, never overwritten) and print their public keys
on stdout, one per line, in the order below.

  -o FILE             a new age X25519 identity: the private key backups are
                      decrypted with. Its public key ("age1...") goes under
                      recipients in coffer.yaml; keep FILE on restore hosts
                      and offline. 'age -d -i FILE' reads it.
  --signing-key FILE  a new Ed25519 signing key: backups sign every manifest
                      with it. Set signing.key_file to FILE on the hosts that
                      back up; its public key ("coffer-sign1:...") goes under
                      signing.public_keys, on every host that reads backups.

Give one or both.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" && signingKey == "" {
				return usageErr(errors.New("give -o FILE (an age identity) and/or --signing-key FILE: private keys are never printed"))
			}
			if out != "" && out == signingKey {
				return usageErr(errors.New("-o and --signing-key name the same file; give each key its own"))
			}
			now := time.Now()
			if out != "" {
				data, recipient, err := seal.GenerateIdentity(now)
				if err != nil {
					return err
				}
				if err := keyfile.Create(out, data); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), recipient)
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote identity to %s (mode 0600); its public key (age1...) goes under recipients\n", out)
			}
			if signingKey != "" {
				data, pub, err := sign.GenerateKey(now)
				if err != nil {
					return err
				}
				if err := keyfile.Create(signingKey, data); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), pub)
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote signing key %s to %s (mode 0600): set signing.key_file on backup hosts; its public key (coffer-sign1:...) goes under signing.public_keys\n", pub.ID(), signingKey)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "age identity file to create")
	cmd.Flags().StringVar(&signingKey, "signing-key", "", "manifest signing key file to create")
	return cmd
}
