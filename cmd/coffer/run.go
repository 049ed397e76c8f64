package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/daemon"
)

func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: every job on its schedule, with retention, repair, metrics and alerts",
		Long: `Run each job on its cron schedule (default weekly, Sunday 02:00 in the job's
time zone) until SIGTERM or SIGINT. After each backup the daemon repairs
copies missing from a destination, prunes by the retention policy and sweeps
leftovers of interrupted runs; it repeats that maintenance every
daemon.repair_interval. A job that missed its slot while the daemon was down
runs at start.

SIGHUP reloads the configuration; an invalid file is rejected with its
errors and the running configuration stays. SIGTERM cancels running jobs
(uploads aborted, no manifest written) within daemon.shutdown_timeout and
exits 0.

/healthz, /readyz, /metrics and a read-only page for people (/: backups,
drills against the RTO, restore commands and the compliance report; a
browser signs in with daemon.token) are served on daemon.listen (default
127.0.0.1:9847).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if _, err := loadSigner(cfg); err != nil { // every backup must be signed
				return err
			}
			log := g.logger()
			defer log.Sync()
			err = daemon.Run(cmd.Context(), daemon.Options{Config: cfg, Load: g.loadConfig, Version: version, Log: log})
			if se := (*daemon.SetupError)(nil); errors.As(err, &se) {
				return usageErr(se.Err)
			}
			return err
		},
	}
}
