package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// stderrTail is how much of a child's error output goes into an error.
const stderrTail = 2 << 10

// copyBuffer is the chunk size used to move data to and from children.
const copyBuffer = 256 << 10

// child is one run of an external tool. Secrets listed in secrets are
// scrubbed from any output quoted in errors.
type child struct {
	name    string   // for messages, e.g. "pg_dump"
	path    string   // executable
	args    []string // never holds a secret
	env     []string // added to the environment, may hold secrets
	secrets []string // values to scrub from messages
	// lines, when set, sees each line of the child's error output (run
	// by output; by load, its standard output too) and says whether to
	// keep it for error messages: a tool's progress chatter (pg_restore
	// --verbose) is counted, not kept.
	lines func(line []byte) (keep bool)
}

// command builds the exec.Cmd for c bound to ctx. The child runs in its own
// process group so that cancelling ctx kills anything it spawned too.
func (c child) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)
	return cmd
}

// dump runs the child and copies its standard output to w. It returns nil
// only if the child exited 0, all its output reached w and ctx was not
// cancelled. A write error kills the child and is returned.
func (c child) dump(ctx context.Context, w io.Writer) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := c.command(cctx)
	tail := &tailBuffer{}
	cmd.Stderr = tail
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	src := dumpReader(out)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}

	readErr, writeErr := pump(w, src, nil)
	if writeErr != nil || readErr != nil {
		killNow(cmd)
		cancel()
	}
	waitErr := cmd.Wait()

	switch {
	case writeErr != nil:
		return fmt.Errorf("%s: write output: %w", c.name, writeErr)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", c.name, ctx.Err())
	case waitErr != nil:
		return c.exitError(waitErr, tail)
	case readErr != nil:
		return fmt.Errorf("%s: read output: %w", c.name, readErr)
	}
	return nil
}

// load runs the child and copies r to its standard input. A read error from
// r kills the child before its input is closed, so the tool never sees a
// cut-off stream as a complete one, and the read error is returned.
func (c child) load(ctx context.Context, r io.Reader) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := c.command(cctx)
	tail := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = tail, tail
	var lw *lineWriter
	if c.lines != nil {
		// One writer for both, so that one goroutine writes to tail.
		lw = &lineWriter{tail: tail, line: c.lines}
		cmd.Stdout, cmd.Stderr = lw, lw
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}

	readErr, writeErr := pump(in, r, func() bool { return ctx.Err() != nil })
	if readErr != nil || ctx.Err() != nil {
		// Kill first: closing stdin now would look like a clean end.
		killNow(cmd)
		cancel()
	} else if writeErr == nil {
		in.Close() // a complete stream: let the tool see EOF
	}
	waitErr := cmd.Wait()
	if lw != nil {
		lw.flush() // Wait returns once the output is copied
	}

	switch {
	case readErr != nil:
		return fmt.Errorf("%s: read dump: %w", c.name, readErr)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", c.name, ctx.Err())
	case waitErr != nil:
		return c.exitError(waitErr, tail)
	case writeErr != nil:
		// The tool exited 0 without reading all of its input.
		return fmt.Errorf("%s exited before reading the whole dump: %w: %s", c.name, writeErr, c.scrub(tail.String()))
	}
	return nil
}

// pump copies src to dst in copyBuffer chunks until src's EOF, a read or
// write error, or stop (if given) returns true, and says which side failed.
func pump(dst io.Writer, src io.Reader, stop func() bool) (readErr, writeErr error) {
	buf := make([]byte, copyBuffer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
		if stop != nil && stop() {
			return nil, nil
		}
	}
}

// output runs the child to completion and returns its standard output, e.g.
// for `pg_dump --version`.
func (c child) output(ctx context.Context) (string, error) {
	cmd := c.command(ctx)
	tail := &tailBuffer{}
	cmd.Stderr = tail
	var lw *lineWriter
	if c.lines != nil {
		lw = &lineWriter{tail: tail, line: c.lines}
		cmd.Stderr = lw
	}
	out, err := cmd.Output()
	if lw != nil {
		lw.flush() // Output returns once the error output is copied
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: %w", c.name, ctx.Err())
		}
		return "", c.exitError(err, tail)
	}
	return strings.TrimSpace(string(out)), nil
}

// exitError describes a failed child, quoting the end of its output with
// secrets removed.
func (c child) exitError(err error, tail *tailBuffer) error {
	var ee *exec.ExitError
	msg := err.Error()
	if errors.As(err, &ee) {
		msg = ee.ProcessState.String() // "exit status 1", "signal: killed"
	}
	if out := strings.TrimSpace(c.scrub(tail.String())); out != "" {
		return fmt.Errorf("%s failed (%s): %s", c.name, msg, out)
	}
	return fmt.Errorf("%s failed (%s)", c.name, msg)
}

// scrub replaces every secret in s and trims s to its last stderrTail bytes.
func (c child) scrub(s string) string {
	for _, v := range c.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	if len(s) > stderrTail {
		s = "..." + s[len(s)-stderrTail:]
	}
	return s
}

// tailBuffer keeps the last few KiB written to it: more than stderrTail, so
// that a secret cut at the start of the kept text is still whole when it is
// scrubbed (secrets longer than the slack may leak in part).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailKeep = 4 * stderrTail

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailKeep {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailKeep:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lineWriter hands a child's error output to line a line at a time and
// keeps in tail the lines line keeps. Only the goroutine copying the
// child's output writes to it.
type lineWriter struct {
	tail *tailBuffer
	line func([]byte) bool
	part []byte // an unfinished line
}

// maxLine is the longest line a lineWriter scans; a longer one is kept
// whole, unscanned.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.part = append(w.part, p...)
			if len(w.part) > maxLine {
				w.tail.Write(w.part)
				w.part = w.part[:0]
			}
			break
		}
		line := p[:i+1]
		if len(w.part) > 0 {
			line = append(w.part, line...)
		}
		if w.line(bytes.TrimRight(line, "\r\n")) {
			w.tail.Write(line)
		}
		w.part, p = w.part[:0], p[i+1:]
	}
	return n, nil
}

// flush hands on an unfinished last line.
func (w *lineWriter) flush() {
	if len(w.part) > 0 && w.line(w.part) {
		w.tail.Write(w.part)
	}
	w.part = w.part[:0]
}

// envVar formats one environment entry, skipping empty values.
func envVar(env []string, name, value string) []string {
	if value == "" {
		return env
	}
	return append(env, name+"="+value)
}

// lookTool returns the path of the first of names found in $PATH.
func lookTool(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s found in $PATH", strings.Join(names, ", "))
}
