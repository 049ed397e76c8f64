// Command coffer takes encrypted database backups to several destinations
// and restores them. Run `coffer --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/buildinfo"
	"github.com/coffer-backup/coffer/internal/progress"
)

// version is Coffer's version, stamped into the binary (see
// internal/buildinfo for its forms and the -ldflags override for
// releases). Commands pass it down to what records it.
var version = buildinfo.Read().Version

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
	cpuProfile string
	memProfile string
	profile    *os.File
	term       *progress.Terminal // standard error (stderr)
}

// startProfile starts CPU profiling when --cpuprofile is set.
func (g *globals) startProfile() error {
	if g.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(g.cpuProfile)
	if err != nil {
		return usageErr(err)
	}
	g.profile = f
	return pprof.StartCPUProfile(f)
}

func (g *globals) stopProfile() {
	if g.profile != nil {
		pprof.StopCPUProfile()
		g.profile.Close()
	}
	if g.memProfile != "" {
		if f, err := os.Create(g.memProfile); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
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
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a Go CPU profile to FILE (for performance work)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentFlags().StringVar(&g.memProfile, "memprofile", "", "write a Go allocation profile to FILE at exit (for performance work)")
	_ = root.PersistentFlags().MarkHidden("memprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.startProfile() }
	root.PersistentPostRun = func(*cobra.Command, []string) { g.stopProfile() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newBackupCmd(g),
		newListCmd(g),
		newVerifyCmd(g),
		newRestoreCmd(g),
		newKeygenCmd(),
		newConfigCmd(g),
		newRunCmd(g),
		newAuditCmd(g),
		newReportCmd(g),
		newPruneCmd(g),
		newRepairCmd(g),
		newPurgeCmd(g),
		newDrillCmd(g),
		newStatusCmd(g),
		newDemoCmd(g),
		newVersionCmd(),
	)
	return root
}

func main() {
	setMemoryLimit(defaultMemoryLimit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	os.Exit(exitCode(os.Stderr, err))
}

// exitCode prints err to stderr, as the one line a failed command ends
// with, and maps it to an exit code. Commands return their failure
// rather than print it, so it is said once.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "coffer:", err)
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailed
}
