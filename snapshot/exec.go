package snapshot

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// execSource runs a user-supplied command whose standard output is the dump.
type execSource struct {
	src   config.Source
	child child
}

func newExecSource(src config.Source) (*execSource, error) {
	if len(src.Command) == 0 || src.Command[0] == "" {
		return nil, errors.New("exec source: command is empty")
	}
	names := make([]string, 0, len(src.Env))
	for k := range src.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	c := child{name: filepath.Base(src.Command[0]), path: src.Command[0], args: src.Command[1:]}
	for _, k := range names {
		v := src.Env[k].Reveal()
		c.env = append(c.env, k+"="+v)
		c.secrets = append(c.secrets, v)
	}
	return &execSource{src: src, child: c}, nil
}

func (s *execSource) info() dumpinfo.Info {
	format := s.src.Extension
	if format == "" {
		format = "dump"
	}
	return dumpinfo.Info{Kind: "exec", Database: s.src.Database, ToolVersion: s.child.name, Format: format}
}

// Describe returns the Info of an exec source; it runs nothing.
func (s *execSource) Describe(ctx context.Context) (dumpinfo.Info, error) { return s.info(), nil }

// Dump runs the command and streams its standard output to w. An exec
// dump is opaque: it returns no Tables.
func (s *execSource) Dump(ctx context.Context, w io.Writer) (*dumpinfo.Tables, error) {
	return nil, s.child.dump(ctx, w)
}
