//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// invariants are what the oracle checks, in report order.
var invariants = []struct{ id, name string }{
	{"I1", "committed backup restores (SHA-256 = dump)"},
	{"I2", "verified manifest has its payload"},
	{"I3", "every slot: a backup or an alert"},
	{"I4", "restore --latest = newest verified"},
	{"I5", "no stale multipart upload; RSS flat"},
}

// violation is one broken invariant about one subject (a backup, a
// slot, an upload...), reported once, with how often it was seen again.
type violation struct {
	inv, subject, msg string
	cycle, seen       int
}

func (v *violation) again() string {
	if v.seen > 1 {
		return fmt.Sprintf(" (seen in %d checks)", v.seen)
	}
	return ""
}

// backupInfo is what the oracle knows of one committed backup.
type backupInfo struct {
	id         string
	start      time.Time // real time the daemon logged "backup started"; else when first seen
	payloadKey string
	// verified holds, per destination, the payload ETag at which a
	// restore from that destination gave the exact dump.
	verified map[string]string
	restored bool
}

// copyState is one destination's copy of a backup, as last scanned.
type copyState struct {
	m           *manifest.Manifest // nil: manifest missing or not verified
	manifestErr string
	size        int64 // payload size; -1 when absent
	etag        string
}

// intact reports a verified manifest whose payload is present at the
// recorded size.
func (c *copyState) intact() bool { return c != nil && c.m != nil && c.size == c.m.Payload.Bytes }

// oracle checks the invariants from outside Coffer: it reads the buckets
// directly, verifies manifests with the signing public key (package
// manifest), restores with the coffer binary on a configuration that
// reaches the buckets directly (no proxy, no fault), and compares
// restored dumps with the SHA-256 the dump helper recorded.
type oracle struct {
	h            *harness
	backups      map[string]*backupInfo
	cache        map[string]cached // dest/key@etag -> verified manifest
	cur          map[string]map[string]*copyState
	damaged      map[string]string    // backup id -> destination whose copy the soak damaged
	missingSince map[string]time.Time // I2: dest/id -> first seen without its payload
	violations   []*violation
	byKey        map[string]*violation
	lost         map[string]bool
	slotsChecked int
	// pending counts the slots whose run had started but not reported at
	// the last check (judged later, see checkSlots).
	pending  int
	holeEnd  map[string]time.Time // destination -> last seen black-holed
	restores int
	cycle    int
}

type cached struct {
	m   *manifest.Manifest
	err string
}

func newOracle(h *harness) *oracle {
	return &oracle{h: h, backups: map[string]*backupInfo{}, cache: map[string]cached{}, damaged: map[string]string{},
		missingSince: map[string]time.Time{}, byKey: map[string]*violation{}, lost: map[string]bool{}}
}

// violate records a violation of inv about subject.
func (o *oracle) violate(inv, subject, format string, args ...any) {
	key := inv + "|" + subject
	if v := o.byKey[key]; v != nil {
		v.seen++
		return
	}
	v := &violation{inv: inv, subject: subject, msg: fmt.Sprintf(format, args...), cycle: o.cycle, seen: 1}
	o.byKey[key] = v
	o.violations = append(o.violations, v)
	line := fmt.Sprintf("VIOLATION %s cycle %d seed %d: %s", inv, o.cycle, o.h.p.seed, v.msg)
	o.h.logf("%s", line)
	if !testing.Verbose() || os.Getenv("SOAK_QUIET") != "" {
		fmt.Println(line)
	}
}

func (o *oracle) violationCount(inv string) int {
	n := 0
	for _, v := range o.violations {
		if v.inv == inv {
			n++
		}
	}
	return n
}

// check runs every per-cycle invariant.
func (o *oracle) check(c int) {
	o.cycle = c
	ctx := context.Background()
	o.scan(ctx)
	o.learn()
	o.checkI2()
	o.checkI1(ctx)
	o.checkI4(ctx)
	o.checkUploads(ctx)
	o.checkSlots()
}

// scan lists both buckets and verifies every manifest (cached by ETag).
func (o *oracle) scan(ctx context.Context) {
	o.cur = map[string]map[string]*copyState{}
	for _, d := range o.h.dests {
		objs := map[string]storage.ObjectInfo{}
		for obj, err := range d.direct.List(ctx, "app/") {
			if err != nil {
				o.h.t.Fatalf("oracle: list %s: %v", d.name, err)
			}
			objs[obj.Key] = obj
		}
		for key, obj := range objs {
			job, id, ok := manifest.ParseKey(key)
			if !ok || job != "app" {
				continue
			}
			ck := d.name + "/" + key + "@" + obj.ETag
			c, ok := o.cache[ck]
			if !ok {
				m, err := manifest.Read(ctx, d.direct, d.name, "app", id, o.h.trust)
				c = cached{m: m}
				if err != nil {
					c.err = err.Error()
				}
				o.cache[ck] = c
			}
			cs := &copyState{m: c.m, manifestErr: c.err, size: -1}
			if c.m != nil {
				if p, ok := objs[c.m.Payload.Key]; ok {
					cs.size, cs.etag = p.Size, p.ETag
				}
			}
			if o.cur[id] == nil {
				o.cur[id] = map[string]*copyState{}
			}
			o.cur[id][d.name] = cs
		}
	}
}

// learn adds to the committed backups every backup seen intact on a
// destination and every backup the daemon reported as stored (ok or
// partial), with its real start time from the daemon's log.
func (o *oracle) learn() {
	starts := map[string]time.Time{}
	for _, d := range o.h.incarnations {
		for _, l := range d.logLines() {
			if l.Msg == "backup started" && l.Backup != "" {
				starts[l.Backup] = l.TS
			}
		}
	}
	add := func(id string, seen time.Time) *backupInfo {
		b := o.backups[id]
		if b == nil {
			b = &backupInfo{id: id, start: seen, verified: map[string]string{}}
			if t, ok := starts[id]; ok {
				b.start = t
			}
			o.backups[id] = b
		}
		return b
	}
	for id, copies := range o.cur {
		for _, cs := range copies {
			if cs.intact() {
				if _, ok := starts[id]; !ok {
					continue // not made by the daemon (a forgery that verifies would be a finding of its own)
				}
				b := add(id, time.Now())
				b.payloadKey = cs.m.Payload.Key
			}
		}
	}
	for _, a := range o.h.recv.all() {
		if a.Kind == "backup" && a.BackupID != "" && (a.Outcome == "ok" || a.Outcome == "partial") {
			add(a.BackupID, a.Received)
		}
	}
}

// inWindow reports whether b must still be kept: it started less than
// keep_within ago (real time, with a small margin for the log's clock).
func inWindow(b *backupInfo) bool { return time.Since(b.start) < keepWithin-2*time.Second }

// checkI1: every committed backup inside keep_within restores, to a file
// whose SHA-256 equals the dump it was made from, from at least one
// destination. A backup is restored in full once; afterwards a copy
// counts while its manifest verifies and its payload has the size and
// ETag of the copy that restored. A copy that changed is restored again
// (--from that destination); when none qualifies, the backup is restored
// from any destination, and failing that it is lost.
func (o *oracle) checkI1(ctx context.Context) {
	ids := make([]string, 0, len(o.backups))
	for id := range o.backups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b := o.backups[id]
		if !inWindow(b) {
			continue
		}
		ok := false
		for d, cs := range o.cur[id] {
			if cs.intact() && b.verified[d] != "" && b.verified[d] == cs.etag {
				ok = true
			}
		}
		if ok {
			continue
		}
		var errs []string
		for _, d := range o.h.dests {
			cs := o.cur[id][d.name]
			if !cs.intact() || b.verified[d.name] == cs.etag {
				continue
			}
			served, err := o.restore(ctx, id, d.name)
			if err == nil && served == d.name {
				b.verified[d.name], ok = cs.etag, true
			} else if err != nil {
				errs = append(errs, d.name+": "+err.Error())
			}
		}
		if !ok {
			served, err := o.restore(ctx, id, "")
			if err == nil {
				ok = true
				if cs := o.cur[id][served]; cs != nil {
					b.verified[served] = cs.etag
				}
			} else {
				errs = append(errs, "any: "+err.Error())
			}
		}
		if !ok {
			o.lost[id] = true
			o.violate("I1", id, "backup %s (started %s, inside keep_within) restores from no destination: %s",
				id, b.start.Format("15:04:05"), strings.Join(errs, "; "))
		}
	}
}

// restoreReport is the part of `coffer restore --json` the oracle reads.
type restoreReport struct {
	ID       string `json:"id"`
	ServedBy string `json:"served_by"`
	Manifest struct {
		Plain struct {
			Bytes  int64  `json:"bytes"`
			SHA256 string `json:"sha256"`
		} `json:"plain"`
	} `json:"manifest"`
}

// restore restores backup id ("" for --latest) with the coffer binary,
// trying from first when set, and checks the file against the dump it was
// made from. It returns the destination that served it.
func (o *oracle) restore(ctx context.Context, id, from string) (string, error) {
	rep, err := o.restoreReport(ctx, id, from)
	if err != nil {
		return "", err
	}
	return rep.ServedBy, nil
}

func (o *oracle) restoreReport(ctx context.Context, id, from string) (*restoreReport, error) {
	o.restores++
	out := filepath.Join(o.h.dir, "restored.dump")
	os.Remove(out)
	defer os.Remove(out)
	args := []string{"restore", "--config", o.h.oracleCfg, "--job", "app", "--identity", o.h.identity, "-o", out, "--json"}
	if id != "" {
		args = append(args, "--id", id)
	} else {
		args = append(args, "--latest")
	}
	if from != "" {
		args = append(args, "--from", from)
	}
	stdout, err := o.h.coffer(args...)
	if err != nil {
		return nil, fmt.Errorf("coffer restore: %v", err)
	}
	var rep restoreReport
	if err := json.Unmarshal(stdout, &rep); err != nil {
		return nil, fmt.Errorf("coffer restore --json: unreadable report (%v): %s", err, lastLine(stdout))
	}
	sum, size, err := fileSHA256(out)
	if err != nil {
		return nil, err
	}
	seed, gen, err := dumpIdentity(out)
	if err != nil {
		return nil, err
	}
	want, ok := readDumps(o.h.dumpDir)[gen]
	switch {
	case seed != o.h.p.seed:
		return nil, fmt.Errorf("restored %s: a dump of seed %d, not %d", rep.ID, seed, o.h.p.seed)
	case !ok:
		return nil, fmt.Errorf("restored %s: dump generation %d was never made", rep.ID, gen)
	case sum != want.SHA256 || size != want.Size:
		return nil, fmt.Errorf("restored %s from %s: %d bytes, SHA-256 %s; dump %d was %d bytes, %s", rep.ID, rep.ServedBy, size, sum, gen, want.Size, want.SHA256)
	case rep.Manifest.Plain.SHA256 != "" && rep.Manifest.Plain.SHA256 != sum:
		return nil, fmt.Errorf("restored %s: manifest says plain SHA-256 %s, file is %s", rep.ID, rep.Manifest.Plain.SHA256, sum)
	}
	if b := o.backups[rep.ID]; b != nil {
		b.restored = true
	}
	return &rep, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// checkI2: a verified manifest whose payload is missing or short is a
// violation once it has outlived the next maintenance: two periods plus
// the repair interval (the daemon maintains after each backup and every
// repair_interval).
//
// "The next maintenance" is one that can heal: while a destination is
// black-holed, the only whole copy may be there, so the wait starts again
// when the black hole ends.
func (o *oracle) checkI2() {
	wait := 2*o.h.p.period + repairInterval + 2*time.Second
	if o.h.holeLeft > 0 {
		for k := range o.missingSince {
			o.missingSince[k] = time.Now()
		}
	}
	seen := map[string]bool{}
	for id, copies := range o.cur {
		for d, cs := range copies {
			if cs.m == nil || cs.intact() {
				continue
			}
			k := d + "/" + id
			seen[k] = true
			first, ok := o.missingSince[k]
			if !ok {
				o.missingSince[k] = time.Now()
				continue
			}
			if time.Since(first) > wait {
				what := "missing"
				if cs.size >= 0 {
					what = fmt.Sprintf("%d bytes, manifest says %d", cs.size, cs.m.Payload.Bytes)
				}
				o.violate("I2", k, "verified manifest app/%s/manifest.json on %s has no intact payload (%s) %s after it was first seen",
					id, d, what, time.Since(first).Round(time.Second))
			}
		}
	}
	for k := range o.missingSince {
		if !seen[k] {
			delete(o.missingSince, k)
		}
	}
}

// newestVerified is the newest backup id with a verified manifest and its
// payload at the recorded size on some destination.
func (o *oracle) newestVerified() string {
	newest := ""
	for id, copies := range o.cur {
		for _, cs := range copies {
			if cs.intact() && id > newest {
				newest = id
			}
		}
	}
	return newest
}

// checkI4: `coffer restore --latest` restores the newest verified backup
// (read again after the restore, since the daemon may commit one
// meanwhile), and the file is that backup's dump.
func (o *oracle) checkI4(ctx context.Context) {
	before := o.newestVerified()
	if before == "" {
		return
	}
	rep, err := o.restoreReport(ctx, "", "")
	if err != nil {
		o.violate("I4", "error: "+firstWords(err.Error()), "restore --latest failed while %s is the newest verified backup: %v", before, err)
		return
	}
	if rep.ID == before {
		return
	}
	o.scan(ctx)
	if after := o.newestVerified(); rep.ID != after {
		o.violate("I4", "got "+rep.ID, "restore --latest restored %s; the newest verified backup is %s (was %s)", rep.ID, after, before)
	}
}

// firstWords shortens an error to a stable subject (no ids or times).
func firstWords(s string) string {
	f := strings.Fields(s)
	var keep []string
	for _, w := range f {
		if strings.ContainsAny(w, "0123456789") {
			continue
		}
		keep = append(keep, w)
		if len(keep) == 8 {
			break
		}
	}
	return strings.Join(keep, " ")
}

// checkUploads: I5, no unfinished multipart upload older than the leftover
// grace plus a maintenance (the server's own Initiated time).
//
// A black-holed destination cannot be swept: its uploads' grace is
// counted from the end of the black hole.
func (o *oracle) checkUploads(ctx context.Context) {
	limit := leftoverGrace + 2*o.h.p.period + repairInterval + 5*time.Second
	if o.holeEnd == nil {
		o.holeEnd = map[string]time.Time{}
	}
	if o.h.holeLeft > 0 {
		o.holeEnd[o.h.dests[o.h.holeDest].name] = time.Now()
	}
	for _, d := range o.h.dests {
		var lister storage.UploadLister = d.direct
		for u, err := range lister.Uploads(ctx, "") {
			if err != nil {
				o.h.logf("oracle: list uploads on %s: %v", d.name, err)
				break
			}
			from := u.Initiated
			if e := o.holeEnd[d.name]; e.After(from) {
				from = e
			}
			if age := time.Since(from); age > limit {
				o.violate("I5", d.name+"/"+u.ID, "unfinished multipart upload of %s on %s is %s old (grace %s)", u.Key, d.name, age.Round(time.Second), leftoverGrace)
			}
		}
	}
}

// checkRSS: I5, the daemon's RSS stays flat: the largest VmRSS in the
// last third of the cycles is at most 1.5 times the largest of the first
// third plus 64 MiB (two uploads' buffers). Needs 9 cycles or more.
func (o *oracle) checkRSS() {
	n := o.h.p.cycles
	if n < 9 {
		return
	}
	o.h.rssMu.Lock()
	defer o.h.rssMu.Unlock()
	var first, last int64
	for c, r := range o.h.rssMax {
		switch {
		case c <= n/3:
			first = max(first, r)
		case c > n-n/3:
			last = max(last, r)
		}
	}
	o.h.logf("RSS: max %d MiB in the first third, %d MiB in the last", first>>20, last>>20)
	if first > 0 && last > first*3/2+64<<20 {
		o.violate("I5", "rss", "daemon RSS grew: max %d MiB in the last third of the cycles, %d MiB in the first", last>>20, first>>20)
	}
}

// anyVerified returns a verified manifest the soak can copy fields from.
func (o *oracle) anyVerified() *manifest.Manifest {
	for _, copies := range o.cur {
		for _, cs := range copies {
			if cs.intact() {
				return cs.m
			}
		}
	}
	return nil
}

// editTarget is a backup the soak may damage one copy of.
type editTarget struct{ id, payloadKey string }

// intactOnBoth lists the backups inside keep_within, restored once,
// intact on both destinations and never damaged by the soak, oldest first.
func (o *oracle) intactOnBoth() []editTarget {
	var out []editTarget
	for id, b := range o.backups {
		c := o.cur[id]
		if !inWindow(b) || o.damaged[id] != "" || !b.restored || len(c) < 2 {
			continue
		}
		if c["primary"].intact() && c["offsite"].intact() && c["primary"].m.Payload.Key == c["offsite"].m.Payload.Key {
			out = append(out, editTarget{id: id, payloadKey: c["primary"].m.Payload.Key})
		}
	}
	slices.SortFunc(out, func(a, b editTarget) int { return strings.Compare(a.id, b.id) })
	return out
}
