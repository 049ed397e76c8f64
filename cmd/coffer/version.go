package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print Coffer's version, the commit it was built from, and the Go and library versions",
		Long: `Print Coffer's version (the same line as 'coffer --version'; manifests and
drill reports record it as coffer_version), the git commit the binary was
built from and whether the working tree had uncommitted changes, the Go that
built it, and the versions of the libraries backups depend on: age
(encryption), klauspost/compress (zstd) and the AWS SDK and its S3 client.

--json prints one JSON object with these fields (stable: later versions may
add fields, never rename or remove one; "" when the binary does not record
the value):

  version      Coffer's version: a release ("v1.2.3"), a Go pseudo-version
               naming the commit, "+dirty" for a modified tree, or "dev"
  commit       the full git commit
  modified     true when the working tree had uncommitted changes
  commit_time  the commit's time, RFC 3339
  go_version   the Go toolchain that built the binary
  age          version of filippo.io/age
  zstd         version of github.com/klauspost/compress
  aws_sdk      version of github.com/aws/aws-sdk-go-v2
  s3           version of github.com/aws/aws-sdk-go-v2/service/s3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			printVersion(cmd.OutOrStdout(), info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// printVersion writes info for a person. The first line is the one
// 'coffer --version' prints.
func printVersion(w io.Writer, info buildinfo.Info) {
	fmt.Fprintf(w, "coffer version %s\n", info.Version)
	commit := "none recorded (built outside a git checkout, or with -buildvcs=false)"
	if info.Commit != "" {
		commit = info.Commit
		if info.Modified {
			commit += " (modified)"
		}
	}
	row := func(name, value string) {
		if value == "" {
			value = "unknown"
		}
		fmt.Fprintf(w, "%-12s %s\n", name, value)
	}
	module := func(path, version string) string {
		if version == "" {
			return ""
		}
		return path + " " + version
	}
	row("commit", commit)
	row("commit time", info.CommitTime)
	row("go", info.GoVersion)
	row("age", module(buildinfo.AgeModule, info.Age))
	row("zstd", module(buildinfo.ZstdModule, info.Zstd))
	row("aws sdk", module(buildinfo.AWSSDKModule, info.AWSSDK))
	row("s3", module(buildinfo.S3Module, info.S3))
}
