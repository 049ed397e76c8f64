// Command coffer takes encrypted database backups to several destinations
// and restores them. Run `coffer --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitPartial = 3
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage or configuration error (exit 2).
func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// globals are the flags every command shares.
type globals struct {
	configPath string
	logFormat  string
	verbose    bool
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "coffer",
		Short: "Encrypted database backups to a primary and an offsite bucket, with tested restores",
		Long: `Coffer dumps databases (PostgreSQL, MySQL/MariaDB, SQLite, any dump command),
streams each dump once through zstd and age to every destination of a job at
the same time, and writes a manifest last so a half-written backup never
counts. Payloads are standard age files wrapping standard zstd streams.

Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 partial (some
destinations failed).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	defCfg := os.Getenv("COFFER_CONFIG")
	if defCfg == "" {
		defCfg = "coffer.yaml"
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", defCfg, "configuration file (env COFFER_CONFIG)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "console", "log format: console or json")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newBackupCmd(g),
		newListCmd(g),
		newVerifyCmd(g),
		newRestoreCmd(g),
		newKeygenCmd(),
		newConfigCmd(g),
		newDemoCmd(g),
	)
	return root
}

// defaultMemoryLimit is the soft heap limit Coffer sets for itself unless
// GOMEMLIMIT is given: the pipeline's live memory is bounded (about 32 MiB
// of part buffers per S3 destination plus the encoders), and the limit
// keeps the garbage collector from letting the heap double above that.
const defaultMemoryLimit = 80 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	os.Exit(exitCode(err))
}

// exitCode prints err and maps it to an exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "coffer:", err)
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailed
}
