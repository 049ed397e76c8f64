//go:build soak

package soak

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/chaos"
	"github.com/coffer-backup/coffer/manifest"
)

// plan is one cycle's faults, drawn from the seed. draw consumes the
// generator in the same order and amount every cycle, whatever happened
// before, so a seed always gives the same sequence of plans. What a plan
// hits can still depend on timing: a proxy rule hits the Nth request of
// a class that the daemon happens to send, an edit picks among the
// backups that exist at that moment.
type plan struct {
	cycle     int
	ruleSeed  uint64
	rules     [2][]chaos.Rule // per destination: primary, offsite
	blackhole int             // destination to black-hole from this cycle (-1: none)
	holeFor   int             // for so many cycles
	clock     *time.Duration  // new clock offset (nil: unchanged)
	clockFor  int
	plant     bool
	forge     bool
	forgeDest int
	edit      string // "", "flip" or "truncate"
	editPick  float64
	editDest  int
	kill      bool
	killAfter int64 // payload bytes uploaded to primary before the kill
	diskFull  bool
	diskFor   int
}

// clockJumps are the clock offsets a cycle may jump to (from 0).
var clockJumps = []time.Duration{72 * time.Hour, 26 * time.Hour, 30 * time.Minute, 7 * time.Minute, -7 * time.Minute, -30 * time.Minute, -50 * time.Hour}

// draw makes cycle c's plan.
func draw(r *rand.Rand, c int) plan {
	p := plan{cycle: c, ruleSeed: r.Uint64(), blackhole: -1}
	for d := range 2 {
		x := r.Float64()
		resetAt := 64<<10 + r.Int64N(6<<20)
		nth := 1 + r.IntN(2)
		bg := r.Float64()
		switch {
		case x < 0.10: // the manifest commit's answer is lost
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassManifestPut, Nth: 1, Fault: chaos.Drop})
		case x < 0.16: // a manifest PUT refused (5xx)
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassManifestPut, Nth: 1, Fault: chaos.ServerError})
		case x < 0.22: // the multipart completion's answer is lost
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassComplete, Nth: 1, Fault: chaos.Drop})
		case x < 0.28: // the single-PUT payload's answer is lost
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassPayloadPut, Nth: 1, Fault: chaos.Drop})
		case x < 0.36: // connection reset in the middle of a part
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassPart, Nth: nth, Fault: chaos.Reset, ResetAfter: resetAt})
		case x < 0.42: // reset in the middle of a single-PUT payload
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassPayloadPut, Nth: 1, Fault: chaos.Reset, ResetAfter: resetAt / 4})
		case x < 0.46: // a listing refused
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassList, Nth: nth, Fault: chaos.ServerError})
		case x < 0.50: // a delete's answer lost (prune, sweep)
			p.rules[d] = append(p.rules[d], chaos.Rule{Class: chaos.ClassDelete, Nth: 1, Fault: chaos.Drop})
		}
		if bg < 0.25 { // background noise: any request may get a 503
			p.rules[d] = append(p.rules[d], chaos.Rule{Prob: 0.05, Fault: chaos.ServerError})
		}
	}
	if x, d, n := r.Float64(), r.IntN(2), 2+r.IntN(3); x < 0.07 {
		p.blackhole, p.holeFor = d, n
	}
	if x, i, n := r.Float64(), r.IntN(len(clockJumps)), 1+r.IntN(3); x < 0.10 {
		p.clock, p.clockFor = &clockJumps[i], n
	}
	p.plant = r.Float64() < 0.05
	forge, fd := r.Float64(), r.IntN(2)
	p.forge, p.forgeDest = forge < 0.05, fd
	e, pick, ed := r.Float64(), r.Float64(), r.IntN(2)
	switch {
	case e < 0.06:
		p.edit = "flip"
	case e < 0.10:
		p.edit = "truncate"
	}
	p.editPick, p.editDest = pick, ed
	k, after := r.Float64(), 16<<10+r.Int64N(1<<20)
	p.kill, p.killAfter = k < 0.08, after
	df, dn := r.Float64(), 2+r.IntN(3)
	p.diskFull, p.diskFor = df < 0.06, dn
	return p
}

// String lists the plan's faults, for the log.
func (p plan) String() string {
	var parts []string
	for d, rules := range p.rules {
		for _, r := range rules {
			parts = append(parts, destNames[d]+" "+r.String())
		}
	}
	if p.blackhole >= 0 {
		parts = append(parts, fmt.Sprintf("black-hole %s for %d cycles", destNames[p.blackhole], p.holeFor))
	}
	if p.clock != nil {
		parts = append(parts, fmt.Sprintf("clock %+v for %d cycles", *p.clock, p.clockFor))
	}
	if p.plant {
		parts = append(parts, "plant junk manifest")
	}
	if p.forge {
		parts = append(parts, "forge manifest on "+destNames[p.forgeDest])
	}
	if p.edit != "" {
		parts = append(parts, p.edit+" a payload on "+destNames[p.editDest])
	}
	if p.kill {
		parts = append(parts, fmt.Sprintf("kill -9 after %d payload bytes", p.killAfter))
	}
	if p.diskFull {
		parts = append(parts, fmt.Sprintf("state disk full for %d cycles", p.diskFor))
	}
	if len(parts) == 0 {
		return "no faults"
	}
	return strings.Join(parts, "; ")
}

var destNames = [2]string{"primary", "offsite"}

// apply starts the plan's faults before its slot.
func (h *harness) apply(p plan) {
	ctx := context.Background()
	for d, dst := range h.dests {
		dst.proxy.SetRules(p.ruleSeed+uint64(d), p.rules[d]...)
		for _, r := range p.rules[d] {
			h.planned["proxy rule: "+string(r.Fault)]++
		}
	}
	if p.blackhole >= 0 && h.holeLeft == 0 {
		h.holeDest, h.holeLeft = p.blackhole, p.holeFor
		h.dests[p.blackhole].proxy.SetBlackhole(true)
		h.count("black-hole (cycles a destination was down)", p.holeFor)
	}
	if p.clock != nil && h.clockLeft == 0 {
		h.setClock(*p.clock)
		h.clockLeft = p.clockFor
		h.count("clock jump", 1)
	}
	if p.plant {
		h.plant(ctx)
	}
	if p.forge {
		h.forge(ctx, p.forgeDest)
	}
	if p.edit != "" {
		h.editPayload(ctx, p)
	}
	if p.diskFull && h.diskLeft == 0 && h.stateMode != "" {
		if err := h.fillDisk(); err != nil {
			h.logf("state disk not filled: %v", err)
		} else {
			h.diskLeft = p.diskFor
			h.count("state disk full", 1)
		}
	}
}

// endCycle ends the per-request rules and counts down the per-cycle modes.
func (h *harness) endCycle() {
	for _, dst := range h.dests {
		dst.proxy.SetRules(0)
	}
	if h.holeLeft > 0 {
		if h.holeLeft--; h.holeLeft == 0 {
			h.dests[h.holeDest].proxy.SetBlackhole(false)
		}
	}
	if h.clockLeft > 0 {
		if h.clockLeft--; h.clockLeft == 0 {
			h.setClock(0)
			h.count("clock jump", 1) // back
		}
	}
	if h.diskLeft > 0 {
		if h.diskLeft--; h.diskLeft == 0 {
			os.Remove(filepath.Join(h.stateDir, "soak-filler"))
		}
	}
}

// setClock writes the daemon's clock offset (read by the soak build's
// internal/clock on every call).
func (h *harness) setClock(d time.Duration) {
	tmp := h.clockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.clockFile); err != nil {
		h.t.Fatal(err)
	}
	h.clockOffset = d
}

// plant writes junk under a manifest key far in the future (the key of
// issue 12) or a near-future one, straight to a bucket.
func (h *harness) plant(ctx context.Context) {
	d := h.dests[h.rng2.IntN(2)]
	key := "app/29991231T235959.999Z-0000/manifest.json"
	if h.rng2.IntN(2) == 0 {
		key = manifest.Key("app", manifest.NewID(time.Now().Add(time.Duration(1+h.rng2.IntN(48))*time.Hour)))
	}
	if _, err := d.direct.Put(ctx, key, strings.NewReader("planted by the chaos soak: not a manifest\n")); err != nil {
		h.logf("plant %s on %s: %v", key, d.name, err)
		return
	}
	h.count("planted key", 1)
	h.logf("planted %s on %s", key, d.name)
}

// forge writes a well-formed manifest signed by a key nobody trusts, newer
// than every real backup, copying a real backup's fields.
func (h *harness) forge(ctx context.Context, dest int) {
	src := h.oracle.anyVerified()
	if src == nil {
		h.logf("forge skipped: no verified manifest yet")
		return
	}
	if h.rogue == nil {
		file, _, err := sign.GenerateKey(time.Now())
		if err != nil {
			h.t.Fatal(err)
		}
		path := filepath.Join(h.dir, "rogue.key")
		if err := keyfile.Create(path, file); err != nil {
			h.t.Fatal(err)
		}
		if h.rogue, err = sign.LoadSigner(path); err != nil {
			h.t.Fatal(err)
		}
	}
	m := *src
	m.ID = manifest.NewID(time.Now().Add(time.Duration(1+h.rng2.IntN(90)) * time.Minute))
	m.Payload.Key = strings.Replace(m.Payload.Key, src.ID, m.ID, 1)
	m.Copies = nil
	for _, c := range src.Copies {
		c.Key = strings.Replace(c.Key, src.ID, m.ID, 1)
		m.Copies = append(m.Copies, c)
	}
	data, err := m.Sign(h.rogue)
	if err != nil {
		h.logf("forge: %v", err)
		return
	}
	d := h.dests[dest]
	if _, err := d.direct.Put(ctx, manifest.Key("app", m.ID), bytes.NewReader(data)); err != nil {
		h.logf("forge on %s: %v", d.name, err)
		return
	}
	h.count("forged manifest", 1)
	h.logf("forged app/%s/manifest.json on %s (signed by an untrusted key)", m.ID, d.name)
}

// editPayload damages one copy of a backup inside keep_within whose
// copies are intact on both destinations: bytes flipped (same size) or
// truncated. The other copy is never touched, so the backup stays
// restorable and I1 must hold.
func (h *harness) editPayload(ctx context.Context, p plan) {
	cands := h.oracle.intactOnBoth()
	if len(cands) == 0 {
		h.logf("edit skipped: no backup intact on both destinations")
		return
	}
	b := cands[int(p.editPick*float64(len(cands)))]
	d := h.dests[p.editDest]
	rc, err := d.direct.Get(ctx, b.payloadKey)
	if err != nil {
		h.logf("edit: get %s: %v", b.payloadKey, err)
		return
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(data) < 2 {
		h.logf("edit: read %s: %v", b.payloadKey, err)
		return
	}
	if p.edit == "flip" {
		data[len(data)/2] ^= 0x5a
	} else {
		data = data[:len(data)/2]
	}
	if _, err := d.direct.Put(ctx, b.payloadKey, bytes.NewReader(data)); err != nil {
		h.logf("edit: put %s: %v", b.payloadKey, err)
		return
	}
	h.oracle.damaged[b.id] = d.name
	h.count("payload "+p.edit, 1)
	h.logf("%s payload %s on %s", p.edit, b.payloadKey, d.name)
}

// mountState makes the state directory a small tmpfs, so that it can be
// filled. It returns "tmpfs", or "" when mounting is not possible (then
// the full-disk fault is skipped and the report says so).
func (h *harness) mountState() string {
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", h.stateDir).CombinedOutput()
	if err != nil {
		h.logf("state dir not on a tmpfs (%v: %s): the full-state-disk fault is skipped", err, bytes.TrimSpace(out))
		return ""
	}
	h.t.Cleanup(func() { exec.Command("umount", "-l", h.stateDir).Run() })
	return "tmpfs"
}

// fillDisk fills the state tmpfs with a filler file until ENOSPC.
func (h *harness) fillDisk() error {
	f, err := os.Create(filepath.Join(h.stateDir, "soak-filler"))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if strings.Contains(err.Error(), "no space") {
				return nil
			}
			return err
		}
	}
}

// count adds n to the faults injected of kind.
func (h *harness) count(kind string, n int) { h.injected[kind] += n }

// proxyFaults adds the proxies' injections to the counts.
func (h *harness) proxyFaults() map[string]int {
	out := map[string]int{}
	for _, d := range h.dests {
		for _, in := range d.proxy.Injected() {
			if in.Fault == chaos.Blackhole {
				out["black-holed requests"]++
				continue
			}
			out[fmt.Sprintf("%s on %s", in.Fault, in.Class)]++
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
