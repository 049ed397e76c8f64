package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/storage"
)

// chainedLog records n events in a fresh log and returns it, its lines
// and the events' IDs in order.
func chainedLog(t *testing.T, n int) (*Log, []string) {
	t.Helper()
	l := openLog(t, t.TempDir())
	return l, record(t, l, n)
}

// fileLines returns the lines of path, without newlines.
func fileLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// writeLines replaces path with lines.
func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifyLocal verifies the log at path alone.
func verifyLocal(t *testing.T, path string) *Verification {
	t.Helper()
	v, err := Verify(t.Context(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantBroken checks that v names the problem kind at line of id.
func wantBroken(t *testing.T, v *Verification, kind string, line int, id string) {
	t.Helper()
	if v.Intact {
		t.Fatalf("verification intact, want %s at line %d (%s): %+v", kind, line, id, v)
	}
	p := v.FirstProblem()
	if p == nil {
		t.Fatalf("not intact, but no problem: %+v", v)
	}
	if p.Kind != kind || p.Line != line || p.EventID != id {
		t.Fatalf("first problem %s\nwant kind %s at line %d, event %s", p, kind, line, id)
	}
}

func TestIntactLogVerifies(t *testing.T) {
	l, ids := chainedLog(t, 5)
	v := verifyLocal(t, l.Path())
	if !v.Intact || v.FirstProblem() != nil {
		t.Fatalf("intact log reported broken: %+v", v)
	}
	tr := v.Trails[0]
	if tr.Status != TrailIntact || tr.Chained != 5 || tr.Unchained != 0 {
		t.Errorf("trail %+v, want intact with 5 chained events", tr)
	}
	for _, id := range ids[:4] {
		if !v.Proven(id) {
			t.Errorf("event %s not proven: %s", id, v.Unproven()[id])
		}
	}
	// Nothing vouches for the last line yet: it could be edited freely.
	if v.Proven(ids[4]) {
		t.Error("the log's last event is proven by the local log alone")
	}
	evs := readLines(t, l.Path())
	if evs[0].Seq != 1 || evs[0].Prev != Genesis {
		t.Errorf("first event seq %d prev %s, want 1 and Genesis", evs[0].Seq, evs[0].Prev)
	}
}

func TestEditedEventIsNamed(t *testing.T) {
	l, ids := chainedLog(t, 5)
	lines := fileLines(t, l.Path())
	lines[2] = bytes.Replace(lines[2], []byte(`"outcome":"ok"`), []byte(`"outcome":"failed"`), 1)
	writeLines(t, l.Path(), lines)
	v := verifyLocal(t, l.Path())
	wantBroken(t, v, KindEdited, 3, ids[2])
	for _, id := range ids {
		if v.Proven(id) {
			t.Errorf("event %s of a broken log is proven", id)
		}
	}
}

func TestDeletedEventIsNamed(t *testing.T) {
	l, ids := chainedLog(t, 5)
	lines := fileLines(t, l.Path())
	writeLines(t, l.Path(), append(lines[:2:2], lines[3:]...))
	// The event after the gap (ids[3], now line 3) is where the chain breaks.
	v := verifyLocal(t, l.Path())
	wantBroken(t, v, KindRemoved, 3, ids[3])
	if p := v.FirstProblem(); !strings.Contains(p.Detail, "seq 3") {
		t.Errorf("detail %q does not name the missing seq 3", p.Detail)
	}
}

func TestDeletedFirstEventsAreNamed(t *testing.T) {
	l, ids := chainedLog(t, 4)
	lines := fileLines(t, l.Path())
	writeLines(t, l.Path(), lines[2:])
	wantBroken(t, verifyLocal(t, l.Path()), KindRemoved, 1, ids[2])
}

func TestReorderedPairIsNamed(t *testing.T) {
	l, ids := chainedLog(t, 5)
	lines := fileLines(t, l.Path())
	lines[2], lines[3] = lines[3], lines[2]
	writeLines(t, l.Path(), lines)
	wantBroken(t, verifyLocal(t, l.Path()), KindReordered, 3, ids[3])
}

func TestInsertedForgedEventIsNamed(t *testing.T) {
	t.Run("without chain fields", func(t *testing.T) {
		l, _ := chainedLog(t, 4)
		lines := fileLines(t, l.Path())
		forged := []byte(`{"id":"20260101T000000.000000000Z-forged","time":"2026-01-01T00:00:00Z","host":"h","user":"u","action":"backup","job":"db","backup_id":"20260101T000000Z-0001","destination":"offsite","outcome":"ok","rule":"","detail":""}`)
		writeLines(t, l.Path(), append(lines[:2:2], append([][]byte{forged}, lines[2:]...)...))
		wantBroken(t, verifyLocal(t, l.Path()), KindInserted, 3, "20260101T000000.000000000Z-forged")
	})
	t.Run("with forged chain fields", func(t *testing.T) {
		l, _ := chainedLog(t, 4)
		lines := fileLines(t, l.Path())
		// A forger who knows the scheme links the event to line 2 and
		// gives it the next seq; the real line 3 then no longer links.
		ev := Event{ID: "20260101T000000.000000000Z-forged", Action: ActionBackup, Job: "db", Outcome: OutcomeOK,
			Seq: 3, Prev: LineHash(lines[1])}
		ev.Time = readLines(t, l.Path())[1].Time
		forged, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		writeLines(t, l.Path(), append(lines[:2:2], append([][]byte{forged}, lines[2:]...)...))
		wantBroken(t, verifyLocal(t, l.Path()), KindInserted, 3, "20260101T000000.000000000Z-forged")
	})
}

func TestChainSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	record(t, l1, 2)
	l1.Close()
	l2 := openLog(t, dir)
	record(t, l2, 2)
	v := verifyLocal(t, l2.Path())
	if !v.Intact {
		t.Fatalf("chain broken across a reopen: %s", v.FirstProblem())
	}
	if evs := readLines(t, l2.Path()); evs[2].Seq != 3 || evs[2].Prev != LineHash(fileLines(t, l2.Path())[1]) {
		t.Errorf("event after reopen: seq %d prev %s; want seq 3 linked to line 2", evs[2].Seq, evs[2].Prev)
	}
}

func TestTwoProcessesKeepOneChain(t *testing.T) {
	dir := t.TempDir()
	a, b := openLog(t, dir), openLog(t, dir)
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		for range 10 {
			wg.Go(func() {
				if err := l.Record(Event{Action: ActionBackup, Job: "db"}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	v := verifyLocal(t, a.Path())
	if !v.Intact || v.Trails[0].Chained != 20 {
		t.Fatalf("two writers: %+v (first problem %v)", v.Trails, v.FirstProblem())
	}
}

func TestTornLineKeepsTheChain(t *testing.T) {
	dir := t.TempDir()
	l1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	record(t, l1, 2)
	l1.Close()
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"torn","ti`)
	f.Close()
	l2 := openLog(t, dir)
	if err := l2.Record(Event{Action: ActionBackup, Job: "db"}); err != nil {
		t.Fatal(err)
	}
	v := verifyLocal(t, l2.Path())
	if !v.Intact || v.Trails[0].Chained != 3 {
		t.Fatalf("a crash's torn line broke the chain: %v %+v", v.FirstProblem(), v.Trails)
	}
	if len(v.Trails[0].Notes) == 0 {
		t.Error("the torn line is not noted")
	}
}

func TestUnchainedOldLogIsUnprovenNotBroken(t *testing.T) {
	dir := t.TempDir()
	old := `{"id":"20250101T000000.000000000Z-aaaa","time":"2025-01-01T00:00:00Z","host":"h","user":"u","action":"backup","job":"db","backup_id":"20250101T000000Z-0001","destination":"primary","outcome":"ok","rule":"","detail":""}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir)
	ids := record(t, l, 2)
	v := verifyLocal(t, l.Path())
	if !v.Intact {
		t.Fatalf("an old unchained prefix is reported broken: %s", v.FirstProblem())
	}
	tr := v.Trails[0]
	if tr.Unchained != 1 || tr.Chained != 2 {
		t.Errorf("trail %+v, want 1 unchained and 2 chained", tr)
	}
	if v.Proven("20250101T000000.000000000Z-aaaa") || !strings.Contains(v.Unproven()["20250101T000000.000000000Z-aaaa"], "unchained") {
		t.Errorf("unchained event: proven %v, why %q", v.Proven("20250101T000000.000000000Z-aaaa"), v.Unproven()["20250101T000000.000000000Z-aaaa"])
	}
	if !v.Proven(ids[0]) {
		t.Errorf("chained events after the old prefix are not proven: %v", v.Unproven())
	}
	// Only-unchained logs are "unchained", never broken.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, FileName), []byte(old), 0o600)
	v2 := verifyLocal(t, filepath.Join(dir2, FileName))
	if !v2.Intact || v2.Trails[0].Status != TrailUnchained {
		t.Errorf("old log: %+v", v2.Trails)
	}
}

// shipSigned ships l's new events to s, heads signed by signer (unsigned
// when nil).
func shipSigned(t *testing.T, l *Log, s storage.Store, signer *sign.Signer) {
	t.Helper()
	l.SetSigner(signer)
	if _, err := l.Ship(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// objectKeys returns the .jsonl keys under Prefix in s, sorted.
func objectKeys(t *testing.T, s storage.Store) []string {
	t.Helper()
	var keys []string
	for obj, err := range s.List(t.Context(), Prefix) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(obj.Key, ".jsonl") {
			keys = append(keys, obj.Key)
		}
	}
	return keys
}

func verifyShipped(t *testing.T, local string, s storage.Store, trusted ...*sign.Signer) *Verification {
	t.Helper()
	var keys []sign.PublicKey
	for _, k := range trusted {
		keys = append(keys, k.Public())
	}
	v, err := Verify(t.Context(), local, []storage.Destination{{Name: "primary", Store: s}}, sign.NewVerifier(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestShippedTrailVerifies(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, ids := chainedLog(t, 3)
	shipSigned(t, l, st, signer)
	ids = append(ids, record(t, l, 2)...)
	shipSigned(t, l, st, signer)
	v := verifyShipped(t, l.Path(), st, signer)
	if !v.Intact {
		t.Fatalf("intact shipped trail reported broken: %s", v.FirstProblem())
	}
	shipped := v.Trails[1]
	if shipped.Objects != 2 || shipped.SignedHeads != 2 || shipped.Status != TrailIntact {
		t.Errorf("shipped trail %+v, want 2 objects with 2 verified heads", shipped)
	}
	// Without the local log, the bucket alone proves every event.
	v = verifyShipped(t, "", st, signer)
	for _, id := range ids {
		if !v.Proven(id) {
			t.Errorf("shipped event %s not proven: %s", id, v.Unproven()[id])
		}
	}
}

func TestShippedHeadWithBadSignatureIsNamed(t *testing.T) {
	signer, stranger := signtest.SeededSigner(1), signtest.SeededSigner(2)
	st := newDirStore(t)
	l, ids := chainedLog(t, 3)
	shipSigned(t, l, st, stranger) // a head signed by a key nobody trusts
	v := verifyShipped(t, "", st, signer)
	wantBroken(t, v, KindBadSignature, 3, ids[2])
	for _, id := range ids {
		if v.Proven(id) {
			t.Errorf("event %s under a bad signature is proven", id)
		}
	}

	// A trusted signature over other bytes: the head's Head field edited
	// after signing.
	st2 := newDirStore(t)
	l2, ids2 := chainedLog(t, 2)
	shipSigned(t, l2, st2, signer)
	hk := headKey(objectKeys(t, st2)[0])
	rc, err := st2.Get(t.Context(), hk)
	if err != nil {
		t.Fatal(err)
	}
	var h Head
	json.NewDecoder(rc).Decode(&h)
	rc.Close()
	h.Head = Genesis
	hb, _ := json.Marshal(h)
	if _, err := st2.Put(t.Context(), hk, bytes.NewReader(hb)); err != nil {
		t.Fatal(err)
	}
	wantBroken(t, verifyShipped(t, "", st2, signer), KindBadSignature, 2, ids2[1])
}

func TestUnsignedShippedHeadIsNamed(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, ids := chainedLog(t, 2)
	shipSigned(t, l, st, nil)
	wantBroken(t, verifyShipped(t, "", st, signer), KindUnsignedHead, 1, ids[0])
}

func TestEditedShippedEventIsNamed(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, ids := chainedLog(t, 4)
	shipSigned(t, l, st, signer)
	key := objectKeys(t, st)[0]
	rc, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	lines[1] = bytes.Replace(lines[1], []byte(`"outcome":"ok"`), []byte(`"outcome":"failed"`), 1)
	if _, err := st.Put(t.Context(), key, bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))); err != nil {
		t.Fatal(err)
	}
	v := verifyShipped(t, "", st, signer)
	wantBroken(t, v, KindEdited, 2, ids[1])
	// With the local log, the two copies of the event also disagree.
	v = verifyShipped(t, l.Path(), st, signer)
	if len(v.Disagreements) != 1 || v.Disagreements[0].EventID != ids[1] {
		t.Errorf("disagreements %+v, want one about %s", v.Disagreements, ids[1])
	}
	if v.Proven(ids[1]) {
		t.Errorf("event %s whose copies differ is proven", ids[1])
	}
}

// A host attacker rewrites the local log's tail consistently (new hashes
// all the way down): the local chain is intact, but it disagrees with the
// signed shipped copy, and that is reported rather than resolved by the
// local copy winning.
func TestRewrittenLocalLogDisagreesWithShippedCopy(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, ids := chainedLog(t, 3)
	shipSigned(t, l, st, signer)
	evs := readLines(t, l.Path())
	evs[1].Outcome = OutcomeFailed
	var lines [][]byte
	prev := Genesis
	for i, ev := range evs {
		ev.Seq, ev.Prev = int64(i+1), prev
		b, _ := json.Marshal(ev)
		lines = append(lines, b)
		prev = LineHash(b)
	}
	writeLines(t, l.Path(), lines)
	v := verifyShipped(t, l.Path(), st, signer)
	if v.Trails[0].Status != TrailIntact {
		t.Fatalf("rewritten local chain: %+v", v.Trails[0])
	}
	if v.Intact || len(v.Disagreements) == 0 || v.Disagreements[0].EventID != ids[1] || v.Disagreements[0].Kind != KindDisagreement {
		t.Fatalf("disagreements %+v, want the first about %s", v.Disagreements, ids[1])
	}
	if v.Proven(ids[1]) {
		t.Errorf("event %s whose copies differ is proven", ids[1])
	}
	// Read (the export) does not silently let the local copy win either.
	_, err := Read(t.Context(), l.Path(), []storage.Store{st}, time.Time{})
	var d *DisagreementError
	if !errors.As(err, &d) || d.ID != ids[1] {
		t.Errorf("Read error %v, want a disagreement about %s", err, ids[1])
	}
}

func TestRemovedShippedObjectIsNamed(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, _ := chainedLog(t, 2)
	shipSigned(t, l, st, signer)
	record(t, l, 2)
	shipSigned(t, l, st, signer)
	third := record(t, l, 1)
	shipSigned(t, l, st, signer)
	keys := objectKeys(t, st)
	if len(keys) != 3 {
		t.Fatalf("objects %v, want 3", keys)
	}
	// Remove the middle object (and its head), as a bucket writer could
	// without Object Lock.
	for _, k := range []string{keys[1], headKey(keys[1])} {
		if err := st.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	wantBroken(t, verifyShipped(t, "", st, signer), KindRemoved, 1, third[0])
}

// An interrupted Ship (object stored, head not) is shipped again whole;
// the headless copy is then no problem.
func TestHeadlessDuplicateOfASignedObjectIsANote(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, _ := chainedLog(t, 2)
	shipSigned(t, l, st, signer)
	key := objectKeys(t, st)[0]
	if err := st.Delete(t.Context(), headKey(key)); err != nil {
		t.Fatal(err)
	}
	// Forget the offset, as a crash before saving it would.
	os.Remove(filepath.Join(filepath.Dir(l.Path()), shippedName))
	shipSigned(t, l, st, signer)
	v := verifyShipped(t, "", st, signer)
	if !v.Intact {
		t.Fatalf("an interrupted ship, shipped again, is reported broken: %s", v.FirstProblem())
	}
}

// Another process died mid-write while this one has the log open: the
// next Record starts on a line of its own and chains to the torn bytes; a
// torn tail longer than any event does not stop recording.
func TestRecordAfterAnotherProcessTornWrite(t *testing.T) {
	for _, torn := range []string{`{"id":"torn","ti`, strings.Repeat("x", 3*maxLine)} {
		l, _ := chainedLog(t, 2)
		f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(torn)
		f.Close()
		if err := l.Record(Event{Action: ActionBackup, Job: "db"}); err != nil {
			t.Fatalf("Record after a torn write of %d bytes: %v", len(torn), err)
		}
		v := verifyLocal(t, l.Path())
		if !v.Intact || v.Trails[0].Chained != 3 {
			t.Errorf("torn write of %d bytes: %v %+v", len(torn), v.FirstProblem(), v.Trails)
		}
		lines := fileLines(t, l.Path())
		var ev Event
		if err := json.Unmarshal(lines[3], &ev); err != nil || ev.Seq != 3 || ev.Prev != LineHash([]byte(torn)) {
			t.Errorf("event after the torn line: %v seq %d prev %s; want seq 3 linked to the torn bytes", err, ev.Seq, ev.Prev)
		}
	}
}

// Without Object Lock a bucket writer can delete the newest object and
// its head: nothing in the bucket links to it, but the local log's
// audit.shipped says it was shipped.
func TestRemovedLastShippedObjectIsNamed(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, _ := chainedLog(t, 2)
	shipSigned(t, l, st, signer)
	last := record(t, l, 2)
	shipSigned(t, l, st, signer)
	keys := objectKeys(t, st)
	for _, k := range []string{keys[1], headKey(keys[1])} {
		if err := st.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	v := verifyShipped(t, l.Path(), st, signer)
	if v.Intact || len(v.Disagreements) == 0 {
		t.Fatalf("the newest object's removal is not reported: %+v", v)
	}
	if p := v.Disagreements[0]; p.Kind != KindRemoved || p.EventID != last[0] || p.Line != 3 {
		t.Errorf("problem %s, want removed at line 3, event %s", p, last[0])
	}
}

// A host whose every object was deleted, leaving only heads, is reported.
func TestHeadsWithoutObjectsAreNamed(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, _ := chainedLog(t, 2)
	shipSigned(t, l, st, signer)
	if err := st.Delete(t.Context(), objectKeys(t, st)[0]); err != nil {
		t.Fatal(err)
	}
	v := verifyShipped(t, "", st, signer)
	if p := v.FirstProblem(); v.Intact || p == nil || p.Kind != KindRemoved {
		t.Fatalf("a head without its object: %+v", v)
	}
}

// Two state directories on one host (two daemons, or a daemon and a user
// running prune) keep two chains in the same _coffer/audit/<host>/: both
// start at Genesis, which is no fork.
func TestTwoLogsOfOneHostVerify(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	a, _ := chainedLog(t, 3)
	b, _ := chainedLog(t, 2)
	shipSigned(t, a, st, signer)
	shipSigned(t, b, st, signer)
	record(t, a, 1)
	shipSigned(t, a, st, signer)
	for _, local := range []string{a.Path(), b.Path()} {
		if v := verifyShipped(t, local, st, signer); !v.Intact {
			t.Errorf("two logs of one host, local %s: %s", local, v.FirstProblem())
		}
	}
}

// A log replaced since the last Ship (its audit.shipped offset no longer
// fits) is shipped again from the start; verify does not call its
// unshipped events removed.
func TestReplacedLogIsNotReportedRemoved(t *testing.T) {
	signer := signtest.SeededSigner(1)
	st := newDirStore(t)
	l, _ := chainedLog(t, 3)
	shipSigned(t, l, st, signer)
	if err := os.Truncate(l.Path(), 0); err != nil {
		t.Fatal(err)
	}
	record(t, l, 1)
	if v := verifyShipped(t, l.Path(), st, signer); !v.Intact {
		t.Errorf("replaced log: %s", v.FirstProblem())
	}
}
