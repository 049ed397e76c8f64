//go:build soak

package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonProc is one incarnation of `coffer run`: the soak kills the
// daemon with SIGKILL and starts a new one.
type daemonProc struct {
	n       int
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{}
	ended   time.Time // when it exited; zero while running
	killed  bool      // by the soak's kill -9
	mu      sync.Mutex
}

// startDaemon starts incarnation n of the daemon.
func (h *harness) startDaemon() *daemonProc {
	h.t.Helper()
	n := len(h.incarnations) + 1
	d := &daemonProc{n: n, logPath: filepath.Join(h.dir, fmt.Sprintf("daemon-%d.log", n)), done: make(chan struct{})}
	f, err := os.Create(d.logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	d.cmd = exec.Command(h.bin, "run", "--config", h.daemonCfg, "--log-format", "json")
	d.cmd.Env = append(os.Environ(), h.env...)
	d.cmd.Env = append(d.cmd.Env, "COFFER_SOAK_CLOCK_FILE="+h.clockFile)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	if err := d.cmd.Start(); err != nil {
		h.t.Fatalf("start coffer run: %v", err)
	}
	d.started = time.Now()
	go func() {
		d.cmd.Wait()
		f.Close()
		d.mu.Lock()
		d.ended = time.Now()
		d.mu.Unlock()
		close(d.done)
	}()
	h.incarnations = append(h.incarnations, d)
	h.d = d
	h.current.Store(d)
	return d
}

// endTime is when the incarnation ended, or now while it runs.
func (d *daemonProc) endTime() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended.IsZero() {
		return time.Now(), false
	}
	return d.ended, true
}

// kill9 kills the daemon with SIGKILL and waits for it to be gone.
func (d *daemonProc) kill9() {
	d.killed = true
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// stop sends SIGTERM and waits up to timeout, then kills.
func (d *daemonProc) stop(timeout time.Duration) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// rss returns the daemon's resident set size in bytes (VmRSS), or 0 when
// it is not running.
func (d *daemonProc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// logLine is one JSON log line of the daemon, with the fields the oracle
// reads.
type logLine struct {
	TS      time.Time
	Level   string
	Msg     string
	Trigger string
	Backup  string
	Slot    time.Time
	Err     string
}

// logLines reads the incarnation's log so far.
func (d *daemonProc) logLines() []logLine {
	f, err := os.Open(d.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		l := logLine{}
		l.Level, _ = m["level"].(string)
		l.Msg, _ = m["msg"].(string)
		l.Trigger, _ = m["trigger"].(string)
		l.Backup, _ = m["backup"].(string)
		l.Err, _ = m["error"].(string)
		l.TS = logTime(m["ts"])
		l.Slot = logTime(m["slot"])
		out = append(out, l)
	}
	return out
}

// alert is one notification the webhook receiver got.
type alert struct {
	Received time.Time
	Kind     string            `json:"kind"`
	Job      string            `json:"job"`
	BackupID string            `json:"backup_id"`
	Outcome  string            `json:"outcome"`
	Message  string            `json:"message"`
	Dests    map[string]string `json:"destinations"`
}

// receiver records every notification the daemon sends.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []alert
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var a alert
		if err := json.NewDecoder(req.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.Received = time.Now()
		r.mu.Lock()
		r.alerts = append(r.alerts, a)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert(nil), r.alerts...)
}

// logTime parses a time zap's ISO 8601 encoder wrote.
func logTime(v any) time.Time {
	s, _ := v.(string)
	for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
