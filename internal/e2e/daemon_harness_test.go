package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is a running `coffer run` process.
type daemon struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    *lockedBuffer
	listen string
	done   chan struct{}
	code   int
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemonConfig writes a config with the env's two buckets, the given jobs
// block (YAML under "jobs:") and daemon block (YAML under "daemon:"; a
// listen address and state_dir are added), and returns its path.
func (e *env) daemonConfig(name, jobs, daemonYAML string) string {
	e.t.Helper()
	cfg := e.header() + "destinations:\n" + e.primary.yaml("primary") + e.offsite.yaml("offsite") +
		"jobs:\n" + jobs + "daemon:\n" + daemonYAML
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if !slices.Contains(e.extraEnv, listenPlaceholder) {
		e.extraEnv = append(e.extraEnv, listenPlaceholder) // for list, restore...; each daemon sets its own
	}
	return path
}

// listenPlaceholder lets commands other than run load a daemon config.
const listenPlaceholder = "COFFER_LISTEN=127.0.0.1:0"

// startDaemon starts `coffer run` on config with its own state directory
// and health address. It is killed at cleanup if still running.
func (e *env) startDaemon(name, config string) *daemon {
	e.t.Helper()
	d := &daemon{t: e.t, name: name, out: &lockedBuffer{}, listen: freeAddr(e.t), done: make(chan struct{})}
	state := filepath.Join(e.dir, "state-"+name)
	d.cmd = exec.Command(cofferBin, "run", "--config", config, "--log-format", "json")
	d.cmd.Env = append(os.Environ(), e.extraEnv...)
	d.cmd.Env = append(d.cmd.Env, "STATE_DIRECTORY="+state, "COFFER_LISTEN="+d.listen)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		if err != nil && d.code < 0 {
			d.code = -1 // killed by a signal
		}
		close(d.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		e.t.Logf("daemon %s output:\n%s", d.name, d.out.String())
	})
	return d
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %s to daemon %s: %v", sig, d.name, err)
	}
}

// wait waits up to timeout for the daemon to exit and returns its exit
// code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(timeout):
		d.t.Fatalf("daemon %s still running %s after being told to stop", d.name, timeout)
		return 0
	}
}

// waitFor polls cond every 200ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logLines returns the daemon's JSON log lines whose message contains msg.
func (d *daemon) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(d.out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["msg"].(string); strings.Contains(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// get fetches path from the daemon's HTTP endpoint.
func (d *daemon) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.listen + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample whose line starts with series
// (name and labels as Prometheus prints them), or -1 when absent.
func (d *daemon) metric(series string) float64 {
	d.t.Helper()
	code, body := d.get("/metrics")
	if code != 200 {
		d.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// listed is one backup from `coffer list --json`.
type listed struct {
	ID           string    `json:"id"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	Destinations []string  `json:"destinations"`
	Missing      []string  `json:"missing_from"`
}

// list runs `coffer list --json` on config.
func (e *env) list(config string) []listed {
	e.t.Helper()
	out, _, _ := runCmd(e.t, e.extraEnv, nil, cofferBin, "list", "--json", "--config", config)
	var l struct {
		Backups []listed `json:"backups"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		e.t.Fatalf("list --json: %v\n%s", err, out)
	}
	return l.Backups
}

// tcpProxy forwards a loopback port to an S3 server and can be taken down
// (connections refused, open ones cut) and brought back on the same port:
// an offsite data centre going away and coming back.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]bool
	held   atomic.Bool // black hole: connections stay open, nothing is forwarded
	// cutAt, when positive, resets the connection carrying the request
	// byte that brings the bytes forwarded upstream past it (once).
	cutAt    atomic.Int64
	upstream atomic.Int64 // bytes forwarded client -> server
	cuts     atomic.Int64 // connections reset by cutAt
}

// resetAfter makes the proxy reset (RST) the connection that carries the
// client's n-th byte from now on: a connection reset in the middle of an
// upload part.
func (p *tcpProxy) resetAfter(n int64) {
	p.cutAt.Store(p.upstream.Load() + n)
}

// reset aborts c and u with a TCP RST.
func reset(c, u net.Conn) {
	for _, x := range []net.Conn{c, u} {
		if tc, ok := x.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		x.Close()
	}
}

// hold makes the proxy a black hole: it accepts connections and keeps them
// open but forwards nothing, in either direction.
func (p *tcpProxy) hold() { p.held.Store(true) }

// release ends the black hole.
func (p *tcpProxy) release() { p.held.Store(false) }

// newProxy starts a proxy to target (host:port), up.
func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: freeAddr(t), conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

// url is the proxy's address as an endpoint URL.
func (p *tcpProxy) url() string { return "http://" + p.addr }

// up starts accepting connections again.
func (p *tcpProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		return
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen on %s: %v", p.addr, err)
	}
	p.l = l
	go p.accept(l)
}

// down closes the listener and cuts every open connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *tcpProxy) serve(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.l == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { p.copy(u, c, func(n int) bool { return p.forwarded(n, c, u) }); u.Close() }()
	p.copy(c, u, nil)
	c.Close()
}

// forwarded counts n bytes sent upstream and resets the connection when
// they cross cutAt; it reports whether to go on.
func (p *tcpProxy) forwarded(n int, c, u net.Conn) bool {
	total := p.upstream.Add(int64(n))
	if at := p.cutAt.Load(); at > 0 && total >= at && p.cutAt.CompareAndSwap(at, 0) {
		p.cuts.Add(1)
		reset(c, u)
		return false
	}
	return true
}

// copy forwards src to dst until either fails, pausing while held. sent,
// when set, is told of every chunk before it is forwarded and may stop
// the copy.
func (p *tcpProxy) copy(dst, src net.Conn, sent func(int) bool) {
	buf := make([]byte, 32<<10)
	for {
		for p.held.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		n, err := src.Read(buf)
		for p.held.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		if n > 0 {
			if sent != nil && !sent(n) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
