package main

import (
	"context"
	"os"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/progress"
)

// progressEvery is how often progress is logged when it is not drawn on
// a terminal (tests shorten it).
var progressEvery = progress.DefaultEvery

// stderrFile is the standard error the log and the progress line share
// (tests point it at a file).
var stderrFile = os.Stderr

// stderr returns the command's standard error as the log and the
// progress line share it: a log line clears the progress line first.
func (g *globals) stderr() *progress.Terminal {
	if g.term == nil {
		g.term = progress.NewTerminal(stderrFile)
	}
	return g.term
}

// startProgress starts reporting the progress of what (a restore, a
// drill, a backup) runs with the returned context: one line per phase on
// standard error, redrawn in place, when it is a terminal and stdout does
// not carry JSON; otherwise a log line at Info every progressEvery (30
// s). Nothing goes to stdout. Call stop before printing the result.
func (g *globals) startProgress(ctx context.Context, log *zap.Logger, what string, asJSON bool) (_ context.Context, stop func()) {
	o := progress.Options{Log: log, Every: progressEvery, What: what}
	if !asJSON {
		o.Terminal = g.stderr()
	}
	return progress.Start(ctx, o)
}
