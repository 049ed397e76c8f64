//go:build soak

package soak

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/chaos"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage/s3"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(dumpDirEnv); dir != "" {
		os.Exit(runDumpHelper(dir)) // the job's exec source, not a test run
	}
	os.Exit(m.Run())
}

// params are the soak's knobs, from the environment.
type params struct {
	seed   uint64
	cycles int
	period time.Duration // the schedule: one slot every period
}

// The daemon's timing, scaled to the accelerated schedule.
const (
	keepWithin     = 90 * time.Second
	leftoverGrace  = 15 * time.Second
	repairInterval = 4 * time.Second
	stallTimeout   = 2 * time.Second
)

func loadParams(t *testing.T) params {
	p := params{cycles: 200, period: 5 * time.Second}
	if s := os.Getenv("SOAK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: want an unsigned integer", s)
		}
		p.seed = v
	} else {
		var b [8]byte
		rand.Read(b[:])
		p.seed = binary.LittleEndian.Uint64(b[:]) >> 1 // fits an int64 too, for easy copying
	}
	if s := os.Getenv("SOAK_CYCLES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("SOAK_CYCLES=%q: want a positive integer", s)
		}
		p.cycles = v
	}
	if s := os.Getenv("SOAK_PERIOD"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 2 || 60%v != 0 {
			t.Fatalf("SOAK_PERIOD=%q: want whole seconds that divide 60, at least 2", s)
		}
		p.period = time.Duration(v) * time.Second
	}
	return p
}

// dest is one destination: its bucket read directly (the oracle, planted
// objects) and the proxy the daemon goes through.
type dest struct {
	name   string
	srv    testenv.S3Server
	bucket string
	direct *s3.Store
	proxy  *chaos.Proxy
}

// harness runs one soak.
type harness struct {
	t      *testing.T
	p      params
	dir    string
	bin    string
	rng    *mrand.Rand // fault plans only (see draw)
	rng2   *mrand.Rand // choices made while applying a plan
	dests  [2]*dest
	env    []string
	trust  manifest.Trust
	rogue  *sign.Signer
	recv   *receiver
	oracle *oracle

	identity, daemonCfg, oracleCfg string
	stateDir, stateMode            string
	clockFile, dumpDir             string
	clockOffset                    time.Duration

	incarnations []*daemonProc
	d            *daemonProc // the running incarnation (the cycle loop's view)
	current      atomic.Pointer[daemonProc]

	holeDest, holeLeft, clockLeft, diskLeft int

	planned  map[string]int
	injected map[string]int
	cycle    int
	cycleNow atomic.Int64 // h.cycle, for the RSS sampler and logf
	logMu    sync.Mutex
	logFile  *os.File

	rssMu  sync.Mutex
	rssMax map[int]int64 // cycle -> max VmRSS seen
}

// TestSoak is the chaos soak (see package soak and scripts/soak.sh).
func TestSoak(t *testing.T) {
	p := loadParams(t)
	fmt.Printf("chaos soak: seed %d, %d cycles, a slot every %s (replay: SOAK_SEED=%d SOAK_CYCLES=%d scripts/soak.sh)\n",
		p.seed, p.cycles, p.period, p.seed, p.cycles)
	h := newHarness(t, p)
	start := time.Now()
	h.run()
	h.report(time.Since(start))
}

func newHarness(t *testing.T, p params) *harness {
	h := &harness{t: t, p: p,
		rng:      mrand.New(mrand.NewPCG(p.seed, 1)),
		rng2:     mrand.New(mrand.NewPCG(p.seed, 2)),
		planned:  map[string]int{},
		injected: map[string]int{},
		rssMax:   map[int]int64{},
	}
	dir, err := os.MkdirTemp("", "coffer-soak-")
	if err != nil {
		t.Fatal(err)
	}
	h.dir = dir
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SOAK_KEEP") != "" {
			fmt.Printf("chaos soak: logs and configs kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	})
	if h.logFile, err = os.Create(filepath.Join(dir, "soak.log")); err != nil {
		t.Fatal(err)
	}

	h.bin = os.Getenv("COFFER_SOAK_BIN")
	if h.bin == "" {
		h.bin = filepath.Join(dir, "coffer")
		build := exec.Command("go", "build", "-tags", "soak", "-o", h.bin, "../../cmd/coffer")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			t.Fatalf("go build -tags soak ./cmd/coffer: %v", err)
		}
	}

	for i, name := range destNames {
		srv := testenv.S3(t, name)
		opts := s3test.Options(srv)
		d := &dest{name: name, srv: srv, bucket: opts.Bucket}
		d.direct = s3test.NewBucket(t, name, func(o *s3.Options) { o.Bucket = opts.Bucket })
		if d.proxy, err = chaos.New(srv.Endpoint); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.proxy.Close() })
		h.dests[i] = d
	}
	if h.dests[0].srv.SecretKey != h.dests[1].srv.SecretKey {
		t.Fatal("the test MinIO servers must share a secret key")
	}
	h.env = []string{"SOAK_S3_SECRET=" + h.dests[0].srv.SecretKey}

	// Keys: an age identity and a manifest signing key.
	h.identity = filepath.Join(dir, "identity.txt")
	signingKey := filepath.Join(dir, "signing.key")
	out, err := exec.Command(h.bin, "keygen", "-o", h.identity, "--signing-key", signingKey).Output()
	keys := strings.Fields(string(out))
	if err != nil || len(keys) != 2 {
		t.Fatalf("coffer keygen: %v: %q", err, out)
	}
	pub, err := sign.ParsePublicKey(keys[1])
	if err != nil {
		t.Fatalf("signing public key %q: %v", keys[1], err)
	}
	h.trust = manifest.Trust{Verifier: sign.NewVerifier(pub)}

	h.stateDir = filepath.Join(dir, "state")
	os.MkdirAll(h.stateDir, 0o700)
	h.stateMode = h.mountState()
	h.clockFile = filepath.Join(dir, "clock-offset")
	h.setClock(0)
	h.dumpDir = filepath.Join(dir, "dump")
	os.MkdirAll(h.dumpDir, 0o700)
	os.WriteFile(filepath.Join(h.dumpDir, "seed"), []byte(strconv.FormatUint(p.seed, 10)+"\n"), 0o600)
	h.recv = newReceiver(t)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h.daemonCfg = filepath.Join(dir, "coffer.yaml")
	h.oracleCfg = filepath.Join(dir, "oracle.yaml")
	common := func(endpoint func(*dest) string, stateDir string, notify string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "signing:\n  key_file: %s\n  public_keys: [%s]\n", signingKey, keys[1])
		fmt.Fprintf(&b, "recipients:\n  - %s\n", keys[0])
		b.WriteString("destinations:\n")
		for _, d := range h.dests {
			fmt.Fprintf(&b, "  %s:\n    type: s3\n    endpoint: %s\n    region: %s\n    bucket: %s\n    path_style: true\n    insecure_http: true\n    access_key_id: %s\n    secret_access_key: ${SOAK_S3_SECRET}\n",
				d.name, endpoint(d), d.srv.Region, d.bucket, d.srv.AccessKey)
		}
		fmt.Fprintf(&b, `jobs:
  app:
    source:
      type: exec
      command: [%s]
      extension: dump
      env:
        %s: %s
    schedule: "*/%d * * * * *"
    compression:
      level: 1
      threads: 1
    retention:
      keep_within: %s
      min_keep: 2
      allow_short: true
    max_shrink_percent: 100
    stall_timeout: %s
    drill:
      enabled: false
daemon:
  listen: "off"
  state_dir: %s
  leftover_grace: %s
  repair_interval: %s
  shutdown_timeout: 10s
`, self, dumpDirEnv, h.dumpDir, int(p.period/time.Second), keepWithin, stallTimeout, stateDir, leftoverGrace, repairInterval)
		b.WriteString(notify)
		return b.String()
	}
	// The daemon goes through the proxies; the oracle reads the buckets
	// directly, with a state directory of its own.
	daemonYAML := common(func(d *dest) string { return d.proxy.URL() }, h.stateDir, notifyBlock(h.recv.srv.URL+"/hook"))
	oracleState := filepath.Join(dir, "oracle-state")
	os.MkdirAll(oracleState, 0o700)
	oracleYAML := common(func(d *dest) string { return d.srv.Endpoint }, oracleState, "")
	for path, data := range map[string]string{h.daemonCfg: daemonYAML, h.oracleCfg: oracleYAML} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := h.coffer("config", "check", "--config", h.daemonCfg); err != nil {
		t.Fatalf("the soak's configuration is invalid: %v\n%s", err, out)
	}
	h.oracle = newOracle(h)
	return h
}

// notifyBlock is the configuration's notify section: every backup result
// (on_success too) is POSTed to the soak's receiver, an http:// URL on
// loopback, which notify.insecure_http allows.
func notifyBlock(url string) string {
	return "notify:\n  on_success: true\n  insecure_http: true\n  webhooks:\n" +
		"    - " + url + "\n"
}

// coffer runs the coffer binary (not the daemon) and returns its
// standard output; a failure's error ends with the last line of its
// standard error.
func (h *harness) coffer(args ...string) ([]byte, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), h.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, lastLine([]byte(stderr.String())))
	}
	return out, err
}

// logf writes a line to the soak's log (soak.log in the run's directory)
// and, with -v, to the test log.
func (h *harness) logf(format string, args ...any) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	line := fmt.Sprintf("%s cycle %d: %s", time.Now().Format("15:04:05.000"), h.cycleNow.Load(), fmt.Sprintf(format, args...))
	fmt.Fprintln(h.logFile, line)
	if testing.Verbose() && os.Getenv("SOAK_QUIET") == "" {
		fmt.Println(line)
	}
}

// nextSlot is the first schedule activation at or after t.
func (h *harness) nextSlot(t time.Time) time.Time {
	s := t.Truncate(h.p.period)
	if s.Before(t) {
		s = s.Add(h.p.period)
	}
	return s
}

// run drives the cycles: a cycle is one schedule slot. Before the slot
// the cycle's faults are applied; after the slot's run has reported (or
// most of the period has passed) the per-request faults end and the
// oracle checks every invariant from outside Coffer.
func (h *harness) run() {
	h.startDaemon()
	stopRSS := make(chan struct{})
	go h.sampleRSS(stopRSS)
	defer close(stopRSS)
	for c := 1; c <= h.p.cycles; c++ {
		pl := draw(h.rng, c)
		if _, ended := h.d.endTime(); ended {
			// Like systemd's Restart=on-failure; the slots it missed are
			// I3's business.
			h.logf("daemon %d exited on its own (%s); restarting it", h.d.n, h.d.cmd.ProcessState)
			h.count("daemon exited on its own (restarted)", 1)
			h.startDaemon()
		}
		slot := h.nextSlot(time.Now().Add(900 * time.Millisecond))
		time.Sleep(time.Until(slot.Add(-600 * time.Millisecond)))
		h.cycle = c
		h.cycleNow.Store(int64(c))
		h.logf("slot %s: %s", slot.Format("15:04:05"), pl)
		h.apply(pl)
		if pl.kill {
			h.killMidUpload(slot, pl.killAfter)
		}
		h.waitOutcome(slot)
		h.endCycle()
		h.oracle.check(c)
	}
	h.cycle = h.p.cycles + 1
	h.cycleNow.Store(int64(h.cycle))
	// Let the last slots report, with every fault off, then check once
	// more and stop the daemon.
	for _, d := range h.dests {
		d.proxy.SetBlackhole(false)
		d.proxy.SetRules(0)
	}
	h.setClock(0)
	os.Remove(filepath.Join(h.stateDir, "soak-filler"))
	time.Sleep(slotDeadline(h.p.period) + time.Second)
	h.oracle.check(h.p.cycles)
	// Runs still going are judged when they report, or at their deadline.
	for wait := time.Now().Add(80 * time.Second); h.oracle.pending > 0 && time.Now().Before(wait); {
		time.Sleep(5 * time.Second)
		h.oracle.check(h.p.cycles)
	}
	h.d.stop(15 * time.Second)
	h.oracle.checkRSS()
}

// waitOutcome waits until the daemon reports a backup result after slot,
// or until most of the period has passed.
func (h *harness) waitOutcome(slot time.Time) {
	deadline := slot.Add(h.p.period * 7 / 10)
	for time.Now().Before(deadline) {
		for _, a := range h.recv.all() {
			if a.Kind == "backup" && a.Received.After(slot) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killMidUpload kills the daemon with SIGKILL once killAfter payload
// bytes of the slot's backup went through the primary's proxy (or after
// 4 s), then starts it again at once.
func (h *harness) killMidUpload(slot time.Time, killAfter int64) {
	time.Sleep(time.Until(slot))
	px := h.dests[0].proxy
	base := px.BodyBytes(chaos.ClassPart) + px.BodyBytes(chaos.ClassPayloadPut)
	deadline := time.Now().Add(4 * time.Second)
	mid := false
	for time.Now().Before(deadline) {
		if px.BodyBytes(chaos.ClassPart)+px.BodyBytes(chaos.ClassPayloadPut)-base >= killAfter {
			mid = px.Active(chaos.ClassPart)+px.Active(chaos.ClassPayloadPut) > 0
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.d.kill9()
	h.logf("kill -9 of daemon %d (mid-upload: %v); restarting", h.d.n, mid)
	if mid {
		h.count("kill -9 mid-upload", 1)
	} else {
		h.count("kill -9 (not mid-upload)", 1)
	}
	h.startDaemon()
}

// sampleRSS records the daemon's VmRSS every 250 ms, as the maximum per
// cycle.
func (h *harness) sampleRSS(stop chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		d, c := h.current.Load(), int(h.cycleNow.Load())
		if d == nil || c == 0 {
			continue
		}
		if r := d.rss(); r > 0 {
			h.rssMu.Lock()
			h.rssMax[c] = max(h.rssMax[c], r)
			h.rssMu.Unlock()
		}
	}
}

// report prints the table and fails the test on any violation.
func (h *harness) report(took time.Duration) {
	o := h.oracle
	var b strings.Builder
	fmt.Fprintf(&b, "\n== chaos soak report (seed %d)\n", h.p.seed)
	fmt.Fprintf(&b, "%-44s %d (%s, a slot every %s)\n", "cycles", h.p.cycles, took.Round(time.Second), h.p.period)
	fmt.Fprintf(&b, "%-44s %d (%d daemon incarnations)\n", "slots checked", o.slotsChecked, len(h.incarnations))
	fmt.Fprintf(&b, "%-44s %d (restores run: %d)\n", "backups committed", len(o.backups), o.restores)
	fmt.Fprintf(&b, "%-44s %s\n", "state disk", map[string]string{"tmpfs": "16 MiB tmpfs (full-disk fault on)", "": "not a tmpfs: full-disk fault skipped"}[h.stateMode])
	b.WriteString("faults injected:\n")
	all := h.proxyFaults()
	for k, v := range h.injected {
		all[k] += v
	}
	for _, k := range sortedKeys(all) {
		fmt.Fprintf(&b, "  %-42s %d\n", k, all[k])
	}
	b.WriteString("invariant violations (must all be 0):\n")
	total := 0
	for _, inv := range invariants {
		n := o.violationCount(inv.id)
		total += n
		fmt.Fprintf(&b, "  %-42s %d\n", inv.id+" "+inv.name, n)
	}
	fmt.Fprintf(&b, "%-44s %d\n", "backups lost", len(o.lost))
	fmt.Fprintf(&b, "%-44s %d\n", "seed", h.p.seed)
	fmt.Print(b.String())
	fmt.Fprint(h.logFile, b.String())
	if total > 0 || len(o.lost) > 0 {
		fmt.Printf("\nviolations (each first seen at the cycle named; replay: SOAK_SEED=%d SOAK_CYCLES=%d scripts/soak.sh):\n", h.p.seed, h.p.cycles)
		for _, v := range o.violations {
			fmt.Printf("  %s cycle %d seed %d: %s%s\n", v.inv, v.cycle, h.p.seed, v.msg, v.again())
		}
		h.t.Errorf("chaos soak: %d invariant violations, %d backups lost (seed %d)", total, len(o.lost), h.p.seed)
	}
}

// slotDeadline is how long after a slot its outcome may come: a backup
// result or an alert, three periods (at least 15 s) after the slot.
func slotDeadline(period time.Duration) time.Duration { return max(3*period, 15*time.Second) }
