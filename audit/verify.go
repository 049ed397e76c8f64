package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// Kinds of Problem Verify reports.
const (
	KindEdited       = "edited"        // an event's bytes changed after it was written
	KindRemoved      = "removed"       // events are missing from the chain
	KindReordered    = "reordered"     // events are out of their chain order
	KindInserted     = "inserted"      // a line that is not part of the chain
	KindBadSignature = "bad_signature" // a shipped head's signature fails
	KindUnsignedHead = "unsigned_head" // a shipped object with no signed head
	KindDisagreement = "disagreement"  // two copies of one event differ
	KindMalformed    = "malformed"     // a line or head that cannot be read
)

// Trail states in a TrailResult.
const (
	TrailIntact    = "intact"    // every chained event links and every head verifies
	TrailBroken    = "broken"    // a Problem was found
	TrailUnchained = "unchained" // only events written before the chain existed: unproven
	TrailEmpty     = "empty"     // no events
)

// Problem is one way a trail fails: where (file or object and line), which
// event, and what is wrong.
type Problem struct {
	// Trail names the trail: "local log" or "<destination> <host>".
	Trail string `json:"trail"`
	// Object is the file or object key; Line counts from 1 (0: the whole
	// object).
	Object string `json:"object"`
	Line   int    `json:"line"`
	// EventID is the event the problem is found at ("" when the line is
	// not an event).
	EventID string `json:"event_id"`
	// Kind is one of the Kind constants.
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	where := p.Object
	if p.Line > 0 {
		where = fmt.Sprintf("%s line %d", p.Object, p.Line)
	}
	ev := ""
	if p.EventID != "" {
		ev = " event " + p.EventID
	}
	return fmt.Sprintf("%s: %s:%s %s: %s", p.Trail, where, ev, p.Kind, p.Detail)
}

// TrailResult is the verdict on one trail: the local log, or the objects
// one host shipped to one destination.
type TrailResult struct {
	Trail string `json:"trail"`
	// Status is one of the Trail constants.
	Status string `json:"status"`
	// Events counts lines holding events; Chained those with chain
	// fields, Unchained those written before the chain existed.
	Events    int `json:"events"`
	Chained   int `json:"chained"`
	Unchained int `json:"unchained"`
	// Objects and SignedHeads count shipped objects and those whose head
	// signature verified (0 for the local log).
	Objects     int `json:"objects"`
	SignedHeads int `json:"signed_heads"`
	// Problems, the first one first in the trail's order; empty when
	// intact.
	Problems []Problem `json:"problems"`
	// Notes are facts that break nothing (a torn line a crash left, an
	// unsigned duplicate of a signed object, unchained events).
	Notes []string `json:"notes"`
}

// Verification is what Verify found.
type Verification struct {
	// Intact is true when no trail has a Problem and no two copies of an
	// event disagree.
	Intact bool `json:"intact"`
	// Trails in the order read: the local log, then each destination's
	// hosts in name order.
	Trails []TrailResult `json:"trails"`
	// Disagreements are events whose copies (local and shipped, or two
	// shipped) differ.
	Disagreements []Problem `json:"disagreements"`

	unproven map[string]string
	proven   map[string]bool
}

// Proven reports whether the event with this ID was read and is proven:
// on an intact chain (and, when shipped, under a verified signed head),
// with no copy that differs.
func (v *Verification) Proven(id string) bool { return v.proven[id] }

// Unproven returns, by event ID, why each event read is not proven: on a
// broken trail, unchained, in an object without a verified head, or with
// copies that disagree. An event that is absent is proven by an intact
// chain (and, when shipped, a verified signature).
func (v *Verification) Unproven() map[string]string { return v.unproven }

// FirstProblem returns the first problem found, or nil.
func (v *Verification) FirstProblem() *Problem {
	for _, t := range v.Trails {
		if len(t.Problems) > 0 {
			return &t.Problems[0]
		}
	}
	if len(v.Disagreements) > 0 {
		return &v.Disagreements[0]
	}
	return nil
}

// auditLine is one stored line of a log or object.
type auditLine struct {
	no      int    // from 1
	raw     []byte // without the newline
	hash    string // LineHash(raw)
	ev      Event
	parsed  bool // an event with an ID, a time and an action
	chained bool // with Seq and Prev
}

func parseLines(data []byte) []auditLine {
	var out []auditLine
	for i, raw := range splitLines(data) {
		l := auditLine{no: i + 1, raw: raw, hash: LineHash(raw)}
		if json.Unmarshal(raw, &l.ev) == nil && l.ev.ID != "" && !l.ev.Time.IsZero() && l.ev.Action != "" {
			l.parsed = true
			l.chained = l.ev.Seq > 0 && l.ev.Prev != ""
		}
		out = append(out, l)
	}
	return out
}

// chainCheck walks lines and returns the first break of their chain, or
// nil. Where lines are a whole log, the first chained event must be seq 1
// linked to the line before it (Genesis at the top); where they are one
// shipped object (object true), the first line's link is left to the
// caller, which looks for it in the other objects.
func chainCheck(trail, where string, lines []auditLine, object bool) (*Problem, []string) {
	var notes []string
	problem := func(l auditLine, kind, format string, args ...any) (*Problem, []string) {
		return &Problem{Trail: trail, Object: where, Line: l.no, EventID: l.ev.ID, Kind: kind, Detail: fmt.Sprintf(format, args...)}, notes
	}
	var last *auditLine // last chained line
	lastIdx := -1
	for i, l := range lines {
		if !l.parsed {
			if len(bytes.TrimSpace(l.raw)) > 0 {
				switch {
				case i+1 < len(lines) && lines[i+1].chained && lines[i+1].ev.Prev == l.hash:
					notes = append(notes, fmt.Sprintf("%s line %d: a torn line (a crash during a write); the next event chains to it", where, l.no))
				case i+1 == len(lines):
					notes = append(notes, fmt.Sprintf("%s line %d: a torn last line (a crash during a write, or the last event was damaged): unproven", where, l.no))
				case last == nil && !object:
					// Before the chain: an old torn line, unproven like
					// the unchained events around it.
					notes = append(notes, fmt.Sprintf("%s line %d: not an event (before the chain began)", where, l.no))
				default:
					return problem(l, KindEdited, "not an event (%.60q), and the next event does not chain to it: the line was changed", l.raw)
				}
			}
			continue
		}
		if !l.chained {
			if last != nil {
				return problem(l, KindInserted, "an event without chain fields (seq, prev) inside the chain: inserted, or its chain fields were stripped")
			}
			continue
		}
		prevHash := Genesis
		if i > 0 {
			prevHash = lines[i-1].hash
		}
		if last == nil {
			if object && i == 0 {
				last, lastIdx = &lines[i], i
				continue
			}
			switch {
			case l.ev.Seq != 1 && !object:
				return problem(l, KindRemoved, "the chain starts at seq %d: events 1 to %d were removed (or their chain fields stripped)", l.ev.Seq, l.ev.Seq-1)
			case l.ev.Prev != prevHash:
				if i > 0 {
					return problem(lines[i-1], KindEdited, "its hash is not the one the next event (line %d, %s) records: the line was changed after it was written", l.no, l.ev.ID)
				}
				return problem(l, KindRemoved, "the first event does not chain to the start of the log: events before it were removed")
			}
			last, lastIdx = &lines[i], i
			continue
		}
		want := last.ev.Seq + 1
		switch {
		case l.ev.Seq == want && l.ev.Prev == prevHash:
			// Intact link.
		case l.ev.Seq == 1 && l.ev.Prev == Genesis:
			return problem(l, KindInserted, "a second chain starts here (seq 1 after seq %d): lines were inserted or another log was appended", last.ev.Seq)
		case l.ev.Seq == want:
			return problem(lines[i-1], KindEdited, "its hash is not the one the next event (line %d, %s) records: the line was changed after it was written", l.no, l.ev.ID)
		case l.ev.Seq == last.ev.Seq && lastIdx == i-1 && lastIdx > 0 && l.ev.Prev == lines[lastIdx-1].hash:
			return problem(*last, KindInserted, "not part of the chain: the next event (line %d, %s, seq %d) chains to the line before this one", l.no, l.ev.ID, l.ev.Seq)
		case l.ev.Seq > want:
			for _, m := range lines[i+1:] {
				if m.chained && m.ev.Seq == want {
					return problem(l, KindReordered, "seq %d where seq %d was expected; seq %d (%s) is later, at line %d", l.ev.Seq, want, want, m.ev.ID, m.no)
				}
			}
			if want == l.ev.Seq-1 {
				return problem(l, KindRemoved, "seq %d follows seq %d: the event with seq %d was removed", l.ev.Seq, last.ev.Seq, want)
			}
			return problem(l, KindRemoved, "seq %d follows seq %d: events %d to %d were removed", l.ev.Seq, last.ev.Seq, want, l.ev.Seq-1)
		default:
			return problem(l, KindReordered, "seq %d after seq %d: out of order", l.ev.Seq, last.ev.Seq)
		}
		last, lastIdx = &lines[i], i
	}
	return nil, notes
}

// Verify checks the audit trail: the local log at localPath (skipped when
// empty or missing) and the objects under _coffer/audit/ in each of dests,
// grouped by host, with their heads' signatures checked by v. It reports
// the first break of each trail, every event whose copies differ, and
// which events are not proven. Its error is only for what could not be
// read (an unreachable destination, an unreadable file).
func Verify(ctx context.Context, localPath string, dests []storage.Destination, v *sign.Verifier) (*Verification, error) {
	res := &Verification{Trails: []TrailResult{}, Disagreements: []Problem{}, unproven: map[string]string{}}
	proven := map[string]bool{}
	// copies of each event: raw line and where it is.
	type copyOf struct {
		raw   []byte
		trail string
		where string
		line  int
	}
	copies := map[string][]copyOf{}
	addCopy := func(l auditLine, trail, where string) {
		if !l.parsed {
			return
		}
		for _, c := range copies[l.ev.ID] {
			if bytes.Equal(c.raw, l.raw) {
				return
			}
		}
		copies[l.ev.ID] = append(copies[l.ev.ID], copyOf{l.raw, trail, where, l.no})
	}
	unproven := func(l auditLine, why string) {
		if l.parsed {
			if _, ok := res.unproven[l.ev.ID]; !ok {
				res.unproven[l.ev.ID] = why
			}
		}
	}

	var local []auditLine
	if localPath != "" {
		data, err := os.ReadFile(localPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("verify audit log: %w", err)
		default:
			local = parseLines(data)
			tr := TrailResult{Trail: "local log", Problems: []Problem{}, Notes: []string{}}
			count(&tr, local)
			p, notes := chainCheck(tr.Trail, localPath, local, false)
			tr.Notes = append(tr.Notes, notes...)
			if p != nil {
				tr.Problems = append(tr.Problems, *p)
			}
			tr.Status = status(tr)
			lastEvent := -1
			for i, l := range local {
				if l.parsed {
					lastEvent = i
				}
			}
			for i, l := range local {
				addCopy(l, tr.Trail, localPath)
				switch {
				case p != nil:
					unproven(l, "the local audit log is broken: "+p.String())
				case !l.chained:
					unproven(l, "unchained: recorded before the audit trail was hash-chained")
				case i == lastEvent:
					// Nothing after it records its hash: only a shipped,
					// signed copy proves the log's last event.
					unproven(l, "the last event of the local log: no later event or signed shipped head vouches for it yet")
				default:
					proven[l.ev.ID] = true
				}
			}
			res.Trails = append(res.Trails, tr)
		}
	}

	shippedIDs := map[string]bool{} // events in any shipped object
	for _, d := range dests {
		trails, err := verifyStore(ctx, d, v)
		if err != nil {
			return nil, err
		}
		for _, t := range trails {
			for _, o := range t.objects {
				for _, l := range o.lines {
					if l.parsed {
						shippedIDs[l.ev.ID] = true
					}
				}
			}
			res.Trails = append(res.Trails, t.result)
			for _, o := range t.objects {
				for _, l := range o.lines {
					addCopy(l, t.result.Trail, o.key)
					if o.unproven != "" {
						unproven(l, o.unproven)
					} else if l.parsed {
						proven[l.ev.ID] = true
					}
				}
			}
			// Shipped events of the local log's chain that it lost.
			if local != nil {
				res.Disagreements = append(res.Disagreements, missingLocally(t, local, localPath)...)
			}
		}
	}

	if local != nil && len(dests) > 0 {
		if p := shippedButGone(localPath, local, shippedIDs); p != nil {
			res.Disagreements = append(res.Disagreements, *p)
		}
	}

	ids := make([]string, 0, len(copies))
	for id, cs := range copies {
		if len(cs) > 1 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		cs := copies[id]
		for _, c := range cs[1:] {
			p := Problem{Trail: c.trail, Object: c.where, Line: c.line, EventID: id, Kind: KindDisagreement,
				Detail: fmt.Sprintf("differs from the copy in %s (%s line %d): one of them was changed", cs[0].trail, cs[0].where, cs[0].line)}
			res.Disagreements = append(res.Disagreements, p)
		}
		res.unproven[id] = "copies of this event differ: " + cs[0].where + " and " + cs[1].where
		delete(proven, id)
	}
	for id := range proven {
		delete(res.unproven, id)
	}
	res.proven = proven
	res.Intact = len(res.Disagreements) == 0
	for _, t := range res.Trails {
		if t.Status == TrailBroken {
			res.Intact = false
		}
	}
	return res, nil
}

// count fills the event counts of tr from lines.
func count(tr *TrailResult, lines []auditLine) {
	for _, l := range lines {
		if !l.parsed {
			continue
		}
		tr.Events++
		if l.chained {
			tr.Chained++
		} else {
			tr.Unchained++
		}
	}
}

// status decides a trail's Status from its counts and problems.
func status(tr TrailResult) string {
	switch {
	case len(tr.Problems) > 0:
		return TrailBroken
	case tr.Events == 0:
		return TrailEmpty
	case tr.Chained == 0:
		return TrailUnchained
	}
	return TrailIntact
}

// shippedObject is one object of a host's shipped trail.
type shippedObject struct {
	key      string
	data     []byte
	lines    []auditLine
	head     *Head
	headErr  error
	unproven string // why its events are not proven; "" when they are
}

// hostTrail is what one host shipped to one destination.
type hostTrail struct {
	result  TrailResult
	objects []*shippedObject
}

// verifyStore reads every audit object and head in d and checks each
// host's trail.
func verifyStore(ctx context.Context, d storage.Destination, v *sign.Verifier) ([]*hostTrail, error) {
	objs := map[string]*shippedObject{} // by object key
	heads := map[string][]byte{}        // by the object key they name
	var hosts []string
	byHost := map[string][]string{}
	for obj, err := range d.Store.List(ctx, Prefix) {
		if err != nil {
			return nil, fmt.Errorf("verify audit trail in %s: %w", d.Name, err)
		}
		host, ok := layout.AuditHost(obj.Key)
		if !ok {
			continue
		}
		switch {
		case strings.HasSuffix(obj.Key, layout.AuditObjectSuffix):
			data, err := getAll(ctx, d.Store, obj.Key)
			if err != nil {
				return nil, fmt.Errorf("verify audit trail in %s: %w", d.Name, err)
			}
			objs[obj.Key] = &shippedObject{key: obj.Key, data: data, lines: parseLines(data)}
			if !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
			byHost[host] = append(byHost[host], obj.Key)
		case strings.HasSuffix(obj.Key, layout.AuditHeadSuffix):
			data, err := getAll(ctx, d.Store, obj.Key)
			if err != nil {
				return nil, fmt.Errorf("verify audit trail in %s: %w", d.Name, err)
			}
			heads[layout.AuditHeadObject(obj.Key)] = data
			// A host whose every object is gone still has a trail.
			if !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
		}
	}
	for key, hb := range heads {
		o := objs[key]
		if o == nil {
			continue // checked per host below
		}
		var h Head
		if err := json.Unmarshal(hb, &h); err != nil {
			o.headErr = fmt.Errorf("head %s is not JSON: %w", headKey(key), err)
			continue
		}
		o.head = &h
	}
	slices.Sort(hosts)
	var out []*hostTrail
	for _, host := range hosts {
		keys := byHost[host]
		slices.Sort(keys)
		t := &hostTrail{result: TrailResult{Trail: d.Name + " " + host, Problems: []Problem{}, Notes: []string{}}}
		for _, k := range keys {
			t.objects = append(t.objects, objs[k])
		}
		checkHost(t, host, heads, v)
		out = append(out, t)
	}
	return out, nil
}

func getAll(ctx context.Context, s storage.Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// checkHost checks one host's shipped objects: each object's own chain
// and head, then the links between objects.
func checkHost(t *hostTrail, host string, heads map[string][]byte, v *sign.Verifier) {
	tr := &t.result
	byHash := map[string]auditLine{}     // every line of every object
	signedRaw := map[string]bool{}       // hashes of lines in objects whose head verified
	children := map[string][]auditLine{} // chained lines by Prev, distinct
	for _, o := range t.objects {
		for _, l := range o.lines {
			if _, dup := byHash[l.hash]; dup {
				continue
			}
			byHash[l.hash] = l
			if l.chained {
				children[l.ev.Prev] = append(children[l.ev.Prev], l)
			}
		}
	}
	var problems []Problem
	fail := func(o *shippedObject, p Problem) {
		problems = append(problems, p)
		if o != nil && o.unproven == "" {
			o.unproven = p.String()
		}
	}
	var unsigned []*shippedObject
	for _, o := range t.objects {
		tr.Objects++
		count(tr, o.lines)
		first := func() (int, string) {
			if len(o.lines) > 0 {
				return 1, o.lines[0].ev.ID
			}
			return 0, ""
		}
		if p, notes := chainCheck(tr.Trail, o.key, o.lines, true); p != nil {
			fail(o, *p)
		} else {
			tr.Notes = append(tr.Notes, notes...)
		}
		chained := slices.ContainsFunc(o.lines, func(l auditLine) bool { return l.chained })
		line, id := first()
		switch {
		case o.headErr != nil:
			fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: line, EventID: id, Kind: KindMalformed, Detail: o.headErr.Error()})
		case o.head == nil && !chained:
			tr.Notes = append(tr.Notes, o.key+": unchained (shipped before the audit trail was hash-chained): unproven")
			if o.unproven == "" {
				o.unproven = "unchained: shipped before the audit trail was hash-chained"
			}
		case o.head == nil:
			unsigned = append(unsigned, o)
		case o.head.Signature == nil:
			fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: line, EventID: id, Kind: KindUnsignedHead,
				Detail: "its head " + headKey(o.key) + " is not signed (the shipping host had no signing.key_file)"})
		default:
			if p := checkHead(tr.Trail, o, v); p != nil {
				fail(o, *p)
			} else {
				tr.SignedHeads++
				for _, l := range o.lines {
					signedRaw[l.hash] = true
				}
			}
		}
		// The link before the object.
		if len(o.lines) > 0 && o.lines[0].chained {
			l := o.lines[0]
			before, ok := byHash[l.ev.Prev]
			switch {
			case l.ev.Prev == Genesis && l.ev.Seq == 1:
			case !ok:
				fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: 1, EventID: l.ev.ID, Kind: KindRemoved,
					Detail: fmt.Sprintf("seq %d chains to a line that is in no audit object of this host: the events before it were removed (an object deleted or changed)", l.ev.Seq)})
			case before.chained && before.ev.Seq != l.ev.Seq-1 || !before.chained && l.ev.Seq != 1:
				fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: 1, EventID: l.ev.ID, Kind: KindReordered,
					Detail: fmt.Sprintf("seq %d chains to an event with seq %d", l.ev.Seq, before.ev.Seq)})
			}
		}
	}
	// An object without a head is harmless when a signed object holds the
	// same lines (a Ship interrupted before the head, then shipped again).
	for _, o := range unsigned {
		covered := true
		for _, l := range o.lines {
			if !signedRaw[l.hash] {
				covered = false
				break
			}
		}
		if covered {
			tr.Notes = append(tr.Notes, o.key+": no head, but every line is in a signed object (an interrupted ship, shipped again)")
			continue
		}
		line, id := 0, ""
		if len(o.lines) > 0 {
			line, id = 1, o.lines[0].ev.ID
		}
		fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: line, EventID: id, Kind: KindUnsignedHead,
			Detail: "no head " + headKey(o.key) + " signs this object, and its events are in no signed object"})
	}
	// Two different events chained to the same line: a forgery beside the
	// real one (two logs of one host both start at Genesis, which is fine).
	for prev, ls := range children {
		if prev == Genesis || len(ls) < 2 {
			continue
		}
		for _, l := range ls[1:] {
			o := objectOf(t, l)
			fail(o, Problem{Trail: tr.Trail, Object: o.key, Line: l.no, EventID: l.ev.ID, Kind: KindInserted,
				Detail: fmt.Sprintf("chains to the same line as event %s (seq %d): one of them was inserted", ls[0].ev.ID, ls[0].ev.Seq)})
		}
	}
	// Heads whose object is gone.
	for key := range heads {
		if objectHost(key) != host {
			continue
		}
		if slices.ContainsFunc(t.objects, func(o *shippedObject) bool { return o.key == key }) {
			continue
		}
		var h Head
		if json.Unmarshal(heads[key], &h) == nil {
			if _, ok := byHash[h.Head]; ok {
				continue // its lines were shipped again
			}
		}
		problems = append(problems, Problem{Trail: tr.Trail, Object: key, Kind: KindRemoved,
			Detail: "a head names this object, which is missing: its events were removed"})
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Object, b.Object) })
	tr.Problems = append(tr.Problems, problems...)
	tr.Status = status(*tr)
}

// checkHead checks o's head against its bytes and its signature.
func checkHead(trail string, o *shippedObject, v *sign.Verifier) *Problem {
	h := o.head
	p := func(line int, id, kind, detail string) *Problem {
		return &Problem{Trail: trail, Object: o.key, Line: line, EventID: id, Kind: kind, Detail: detail}
	}
	if err := v.Verify(h.SignedBytes(), *h.Signature); err != nil {
		id := ""
		if len(o.lines) > 0 {
			id = o.lines[len(o.lines)-1].ev.ID
		}
		return p(len(o.lines), id, KindBadSignature, fmt.Sprintf("the head %s: %v", headKey(o.key), err))
	}
	sum := sha256.Sum256(o.data)
	switch {
	case h.Object != o.key:
		return p(0, "", KindEdited, fmt.Sprintf("its signed head is for object %s", h.Object))
	case h.SHA256 != hex.EncodeToString(sum[:]) || h.Events != len(o.lines):
		// Name the first line that differs from what the head describes.
		for _, l := range o.lines {
			if l.parsed && l.ev.ID == h.LastID && l.hash != h.Head {
				return p(l.no, l.ev.ID, KindEdited, "the object's bytes are not those its signed head describes")
			}
		}
		line, id := 0, ""
		if len(o.lines) > 0 {
			l := o.lines[len(o.lines)-1]
			line, id = l.no, l.ev.ID
		}
		if h.Events > len(o.lines) {
			return p(line, id, KindRemoved, fmt.Sprintf("the signed head says %d events, the object holds %d", h.Events, len(o.lines)))
		}
		if h.Events < len(o.lines) {
			return p(line, id, KindInserted, fmt.Sprintf("the signed head says %d events, the object holds %d", h.Events, len(o.lines)))
		}
		return p(line, id, KindEdited, "the object's bytes are not those its signed head describes")
	}
	return nil
}

// objectOf returns the first object holding l.
func objectOf(t *hostTrail, l auditLine) *shippedObject {
	for _, o := range t.objects {
		for _, m := range o.lines {
			if m.hash == l.hash {
				return o
			}
		}
	}
	return t.objects[0]
}

// objectHost returns the host segment of an audit object key.
func objectHost(key string) string {
	host, _ := layout.AuditHost(key)
	return host
}

// shippedButGone returns a problem naming the first chained event of the
// local log that audit.shipped says was shipped but that no destination
// holds in any copy (by event ID): its object was deleted (possible where
// there is no Object Lock).
func shippedButGone(localPath string, local []auditLine, shipped map[string]bool) *Problem {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(localPath), shippedName))
	if err != nil {
		return nil
	}
	upTo, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil
	}
	// The offset must end a line of this file, as Ship requires, or the
	// log was replaced since (and Ship starts over).
	n, end := 0, int64(0)
	for ; n < len(local) && end < upTo; n++ {
		end += int64(len(local[n].raw)) + 1
	}
	if end != upTo {
		return nil
	}
	for _, l := range local[:n] {
		if l.chained && !shipped[l.ev.ID] {
			return &Problem{Trail: "local log", Object: localPath, Line: l.no, EventID: l.ev.ID, Kind: KindRemoved,
				Detail: fmt.Sprintf("shipped (%s says the first %d bytes were) but in no audit object of any destination: its object was deleted (or shipped to a destination that is no longer first in any job)", shippedName, upTo)}
		}
	}
	return nil
}

// missingLocally reports shipped events of the local log's own chain that
// the local log no longer has: a shipped event linked to a local line that
// is followed locally by something else.
func missingLocally(t *hostTrail, local []auditLine, localPath string) []Problem {
	localHash := map[string]int{} // hash -> index
	localID := map[string]bool{}
	for i, l := range local {
		localHash[l.hash] = i
		if l.parsed {
			localID[l.ev.ID] = true
		}
	}
	var out []Problem
	for _, o := range t.objects {
		for _, l := range o.lines {
			if !l.chained || localID[l.ev.ID] {
				continue // a differing copy is a disagreement, found by ID
			}
			i, ok := localHash[l.ev.Prev]
			if !ok {
				continue
			}
			where := "is missing from the local log"
			if i+1 < len(local) {
				where = fmt.Sprintf("is missing from the local log (it followed line %d)", local[i].no)
			}
			out = append(out, Problem{Trail: "local log", Object: localPath, Line: local[i].no + 1, EventID: l.ev.ID, Kind: KindRemoved,
				Detail: fmt.Sprintf("shipped in %s (%s line %d, seq %d) but %s", t.result.Trail, o.key, l.no, l.ev.Seq, where)})
		}
	}
	return out
}
