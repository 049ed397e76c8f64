package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// logger builds the zap logger the flags ask for: human-readable console
// output on stderr by default, JSON for machines.
func (g *globals) logger() *zap.Logger {
	level := zapcore.InfoLevel
	if g.verbose {
		level = zapcore.DebugLevel
	}
	var enc zapcore.Encoder
	if g.logFormat == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(g.stderr()), level))
}

// loadConfig loads and validates the configuration; problems are usage
// errors (exit 2).
func (g *globals) loadConfig() (*config.Config, error) {
	if g.logFormat != "console" && g.logFormat != "json" {
		return nil, usageErr(fmt.Errorf("--log-format %q: want console or json", g.logFormat))
	}
	cfg, err := config.Load(g.configPath)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w (give --config FILE or set COFFER_CONFIG; coffer.example.yaml in the repository is a template)", err)
	}
	if err != nil {
		return nil, usageErr(err)
	}
	setMemoryLimit(memoryLimit(cfg))
	return cfg, nil
}

// loadJobs loads the configuration and selects the named job, or every
// job with all (see selectJobs).
func (g *globals) loadJobs(name string, all bool) (*config.Config, []*config.Job, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	jobs, err := selectJobs(cfg, name, all)
	return cfg, jobs, err
}

// selectJobs returns the named job, or every job with all.
func selectJobs(cfg *config.Config, name string, all bool) ([]*config.Job, error) {
	switch {
	case all && name != "":
		return nil, usageErr(fmt.Errorf("give --job or --all, not both"))
	case all:
		var jobs []*config.Job
		for _, n := range cfg.JobOrder {
			jobs = append(jobs, cfg.Jobs[n])
		}
		return jobs, nil
	case name == "":
		return nil, usageErr(fmt.Errorf("--job is required (jobs in %s: %v)", cfg.Path, cfg.JobOrder))
	}
	j, ok := cfg.Jobs[name]
	if !ok {
		return nil, usageErr(fmt.Errorf("--job %s: no such job in %s (jobs: %v)", name, cfg.Path, cfg.JobOrder))
	}
	return []*config.Job{j}, nil
}

// openStores opens a job's destinations in the job's order, moving from
// (if set) to the front.
func openStores(ctx context.Context, cfg *config.Config, job *config.Job, from string) ([]storage.Destination, error) {
	if from != "" && !slices.Contains(job.Destinations, from) {
		return nil, usageErr(fmt.Errorf("--from %s: job %s has no such destination (it has %v)", from, job.Name, job.Destinations))
	}
	return open.JobDestinations(ctx, cfg, job, from)
}

// identityFlags are --identity and --passphrase-file, the age identity
// of a command that decrypts backups (restore, verify, drill) and the
// file holding its passphrase.
type identityFlags struct {
	identity, passFile string
}

// Help texts of the identity flags, where the identity is not taken from
// the configuration.
const (
	identityHelp   = "age identity file (env COFFER_IDENTITY)"
	passphraseHelp = "file (mode 0600) holding the passphrase of a protected identity file (env COFFER_PASSPHRASE_FILE; default: ask on the terminal)"
)

// register adds the flags to cmd with these help texts.
func (f *identityFlags) register(cmd *cobra.Command, identity, passphrase string) {
	cmd.Flags().StringVarP(&f.identity, "identity", "i", "", identity)
	cmd.Flags().StringVar(&f.passFile, "passphrase-file", "", passphrase)
}

// or is f with the identity file (and, unless --passphrase-file is given,
// its passphrase file) taken from the configuration when --identity is
// not given. An empty file changes nothing.
func (f identityFlags) or(file, passFile string) identityFlags {
	if f.identity == "" && file != "" {
		f.identity = file
		if f.passFile == "" {
			f.passFile = passFile
		}
	}
	return f
}

// load reads the identity file named by --identity or $COFFER_IDENTITY;
// with neither, it fails if required and returns none otherwise. A
// passphrase-protected file takes its passphrase from --passphrase-file
// (or $COFFER_PASSPHRASE_FILE), else from the terminal; never from argv.
func (f identityFlags) load(required bool) ([]age.Identity, error) {
	path, passFile := f.identity, f.passFile
	if path == "" {
		path = os.Getenv("COFFER_IDENTITY")
	}
	if path == "" {
		if required {
			return nil, usageErr(fmt.Errorf("--identity FILE is required (or set COFFER_IDENTITY)"))
		}
		return nil, nil
	}
	if passFile == "" {
		passFile = os.Getenv("COFFER_PASSPHRASE_FILE")
	}
	ids, err := seal.LoadIdentitiesWith(path, func() ([]byte, error) { return readPassphrase(passFile) })
	if err != nil {
		return nil, usageErr(err)
	}
	return ids, nil
}

// readPassphrase reads the passphrase from file (which must be private),
// or asks on the controlling terminal when file is empty.
func readPassphrase(file string) ([]byte, error) {
	if file != "" {
		return seal.PassphraseFile(file)()
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("no terminal to ask on: give --passphrase-file FILE")
	}
	defer tty.Close()
	fmt.Fprint(tty, "Passphrase for the identity file: ")
	pass, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return pass, err
}

// writeJSON writes v to w as indented JSON: the --json output of every
// command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
