package repair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/repair"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/s3"
)

// These tests take real backups with backup.Run into buckets on the two
// test MinIO servers and repair them across servers.

const job = "app"

// fast keeps retries short in tests.
var fast = repair.Options{Attempts: 3, Backoff: time.Millisecond}

type env struct {
	t      *testing.T
	id     *age.X25519Identity
	signer *sign.Signer
	ctx    context.Context
}

func newEnv(t *testing.T) *env {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, id: id, signer: signtest.NewSigner(), ctx: context.Background()}
}

// trusted is how the tests read manifests: trusting the env's key.
func (e *env) trusted() manifest.Trust { return signtest.Trust(e.signer) }

func dest(name string, s storage.Store) storage.Destination {
	return storage.Destination{Name: name, Store: s}
}

// backup takes one backup of size random bytes to dests and returns its
// manifest.
func (e *env) backup(size string, dests ...storage.Destination) *manifest.Manifest {
	e.t.Helper()
	src, err := snapshot.NewSource(config.Source{Type: "exec", Command: []string{"head", "-c", size, "/dev/urandom"}, Extension: "bin"})
	if err != nil {
		e.t.Fatal(err)
	}
	m := backuptest.Take(e.t, backup.Job{Name: job, Source: src, Destinations: dests, Recipients: []string{e.id.Recipient().String()},
		Signer: e.signer, Trust: e.trusted(), MaxShrinkPercent: 100})
	time.Sleep(2 * time.Millisecond) // distinct, ordered ids
	return m
}

func (e *env) repair(opts repair.Options, dests ...storage.Destination) repair.Report {
	e.t.Helper()
	rep, err := repair.Run(e.ctx, job, dests, e.trusted(), opts, zaptest.NewLogger(e.t))
	if err != nil {
		e.t.Fatalf("repair.Run: %v", err)
	}
	return rep
}

func (e *env) get(s storage.Store, key string) []byte {
	e.t.Helper()
	rc, err := s.Get(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) keys(s storage.Store) []string {
	e.t.Helper()
	var out []string
	for o, err := range s.List(e.ctx, "") {
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, o.Key)
	}
	return out
}

// requireRepaired checks that d holds backup m as a complete, verified
// copy, its manifest the object from holds, byte for byte (so the backup
// side's signature verifies).
func (e *env) requireRepaired(d storage.Destination, m *manifest.Manifest, from storage.Destination) {
	e.t.Helper()
	sum := sha256.Sum256(e.get(d.Store, m.Payload.Key))
	if got := hex.EncodeToString(sum[:]); got != m.Payload.SHA256 {
		e.t.Fatalf("%s: payload of %s hashes to %s, the backup's is %s", d.Name, m.ID, got, m.Payload.SHA256)
	}
	got, err := manifest.Read(e.ctx, d.Store, d.Name, job, m.ID, e.trusted())
	if err != nil {
		e.t.Fatalf("%s: manifest of %s: %v", d.Name, m.ID, err)
	}
	if got.Payload != m.Payload || got.Plain != m.Plain || got.SignedBy != e.signer.Public().ID() {
		e.t.Fatalf("%s: manifest of %s describes payload %+v signed by %q, want %+v signed by %s", d.Name, m.ID, got.Payload, got.SignedBy, m.Payload, e.signer.Public().ID())
	}
	if key := manifest.Key(job, m.ID); !bytes.Equal(e.get(d.Store, key), e.get(from.Store, key)) {
		e.t.Errorf("%s: manifest of %s is not the one %s holds, byte for byte", d.Name, m.ID, from.Name)
	}
	checks, err := restore.Verify(e.ctx, job, m.ID, []storage.Destination{d}, []age.Identity{e.id}, e.trusted())
	if err != nil || len(checks) != 1 || !checks[0].OK || checks[0].Level != "full" {
		e.t.Fatalf("%s: restore.Verify of %s = %+v, %v", d.Name, m.ID, checks, err)
	}
}

func copiedIDs(rep repair.Report) []string {
	var ids []string
	for _, c := range rep.Copied {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestRepairCopiesMissingBackupsNewestFirst(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsite := dest("offsite", s3test.NewBucket(t, "offsite"))
	oldest := e.backup("3000000", primary)
	both := e.backup("1000", primary, offsite)
	newest := e.backup("3000000", primary)

	rep := e.repair(repair.Options{MaxPerRun: 1}, primary, offsite)
	if len(rep.Copied) != 1 || len(rep.Failed) != 0 || len(rep.Unreachable) != 0 {
		t.Fatalf("bounded run: %+v, want one copy", rep)
	}
	if c := rep.Copied[0]; c.ID != newest.ID || c.From != "primary" || c.To != "offsite" || c.Bytes != newest.Payload.Bytes {
		t.Fatalf("bounded run copied %+v, want the newest backup %s (%d bytes) primary -> offsite", c, newest.ID, newest.Payload.Bytes)
	}
	e.requireRepaired(offsite, newest, primary)

	rep = e.repair(repair.Options{}, primary, offsite)
	if got := copiedIDs(rep); len(got) != 1 || got[0] != oldest.ID || len(rep.Failed) != 0 {
		t.Fatalf("second run: %+v, want only %s copied (%s was on both)", rep, oldest.ID, both.ID)
	}
	e.requireRepaired(offsite, oldest, primary)

	rep = e.repair(repair.Options{}, primary, offsite)
	if len(rep.Copied) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("third run: %+v, want nothing to do", rep)
	}
	if k := e.keys(offsite.Store); len(k) != 6 {
		t.Fatalf("offsite holds %v, want payload and manifest of 3 backups", k)
	}
}

// flip replaces the payload of m on d with a copy that has one byte
// changed in the middle (past the age header).
func (e *env) flip(d storage.Destination, m *manifest.Manifest) {
	e.t.Helper()
	b := e.get(d.Store, m.Payload.Key)
	b[len(b)/2] ^= 0x01
	if _, err := d.Store.Put(e.ctx, m.Payload.Key, bytes.NewReader(b)); err != nil {
		e.t.Fatal(err)
	}
}

func TestCorruptSourceLeavesNothingOnTarget(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	// 5 MiB parts: the 6 MB payload goes up as a multipart upload, which the
	// check at EOF must abort.
	offsiteStore := s3test.NewBucket(t, "offsite", func(o *s3.Options) { o.PartSize = 5 << 20 })
	offsite := dest("offsite", offsiteStore)
	good := e.backup("1000000", primary)
	bad := e.backup("6000000", primary)
	e.flip(primary, bad)

	rep := e.repair(fast, primary, offsite)
	if len(rep.Failed) != 1 || rep.Failed[0].ID != bad.ID || rep.Failed[0].To != "offsite" {
		t.Fatalf("report %+v: want the corrupt backup %s failed", rep, bad.ID)
	}
	if !strings.Contains(rep.Failed[0].Err, "SHA-256") || !strings.Contains(rep.Failed[0].Err, "primary") {
		t.Errorf("failure %q does not say the primary copy's hash is wrong", rep.Failed[0].Err)
	}
	if got := copiedIDs(rep); len(got) != 1 || got[0] != good.ID {
		t.Fatalf("copied %v, want the intact backup %s", got, good.ID)
	}
	for _, k := range e.keys(offsite.Store) {
		if strings.Contains(k, bad.ID) {
			t.Errorf("offsite holds %s of the corrupt backup", k)
		}
	}
	if ups, err := offsiteStore.ListMultipartUploads(e.ctx); err != nil || len(ups) != 0 {
		t.Fatalf("multipart uploads left on offsite: %v, %v", ups, err)
	}
	if c := manifest.ReadCatalog(e.ctx, job, []storage.Destination{offsite}, e.trusted(), nil); len(c.Backups) != 1 || c.Backups[0].ID != good.ID {
		t.Fatalf("offsite catalog = %+v, want only %s", c.Backups, good.ID)
	}
}

func TestCorruptSourceFallsBackToAnotherCopy(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsite := dest("offsite", s3test.NewBucket(t, "offsite"))
	tape := dest("tape", s3test.NewBucket(t, "offsite"))
	m := e.backup("2000000", primary, offsite)
	e.flip(primary, m)

	rep := e.repair(fast, primary, offsite, tape)
	if len(rep.Copied) != 1 || len(rep.Failed) != 0 {
		t.Fatalf("report %+v, want one copy", rep)
	}
	if c := rep.Copied[0]; c.From != "offsite" || c.To != "tape" {
		t.Fatalf("copied %+v, want offsite -> tape (primary is corrupt)", c)
	}
	e.requireRepaired(tape, m, offsite)
}

// countingStore is a real store that counts Create calls for payloads and
// fails the first failCreates of them after 1 MiB.
type countingStore struct {
	storage.Store
	creates     atomic.Int32
	failCreates int32
}

var errInjected = errors.New("injected upload failure")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

func (s *countingStore) Create(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	if strings.HasSuffix(key, manifest.FileName) {
		return storage.Create(ctx, s.Store, key, r)
	}
	if s.creates.Add(1) <= s.failCreates {
		r = io.MultiReader(io.LimitReader(r, 1<<20), errReader{})
	}
	return storage.Create(ctx, s.Store, key, r)
}

func TestLeftoverPayloadKeptWhenIntactReplacedWhenNot(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsiteStore := &countingStore{Store: s3test.NewBucket(t, "offsite")}
	offsite := dest("offsite", offsiteStore)
	intact := e.backup("2000000", primary)
	torn := e.backup("2000000", primary)
	// Payloads without manifests, as an interrupted repair leaves them.
	for m, b := range map[*manifest.Manifest][]byte{
		intact: e.get(primary.Store, intact.Payload.Key),
		torn:   e.get(primary.Store, torn.Payload.Key)[:1000],
	} {
		if _, err := offsiteStore.Store.Put(e.ctx, m.Payload.Key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}

	rep := e.repair(fast, primary, offsite)
	if len(rep.Copied) != 2 || len(rep.Failed) != 0 {
		t.Fatalf("report %+v, want both backups copied", rep)
	}
	if n := offsiteStore.creates.Load(); n != 1 {
		t.Errorf("%d payload uploads, want 1 (the torn leftover re-copied, the intact one kept)", n)
	}
	e.requireRepaired(offsite, intact, primary)
	e.requireRepaired(offsite, torn, primary)
}

func TestFailedUploadIsRetriedAndNeverHalfVisible(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsiteStore := &countingStore{Store: s3test.NewBucket(t, "offsite"), failCreates: 2}
	offsite := dest("offsite", offsiteStore)
	m := e.backup("3000000", primary)

	rep := e.repair(repair.Options{Attempts: 2, Backoff: time.Millisecond}, primary, offsite)
	if len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Err, errInjected.Error()) {
		t.Fatalf("report %+v, want the copy failed with the injected error", rep)
	}
	if n := offsiteStore.creates.Load(); n != 2 {
		t.Errorf("%d upload attempts, want 2", n)
	}
	if k := e.keys(offsite.Store); len(k) != 0 {
		t.Fatalf("offsite holds %v after failed uploads", k)
	}

	offsiteStore.creates.Store(0)
	offsiteStore.failCreates = 1
	rep = e.repair(fast, primary, offsite)
	if len(rep.Copied) != 1 || len(rep.Failed) != 0 {
		t.Fatalf("report %+v, want the copy to succeed on its second attempt", rep)
	}
	if n := offsiteStore.creates.Load(); n != 2 {
		t.Errorf("%d upload attempts, want 2", n)
	}
	e.requireRepaired(offsite, m, primary)
}

func TestUnreachableDestinationIsSkipped(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsite := dest("offsite", s3test.NewBucket(t, "offsite"))
	srv, stop := testenv.StartMinIO(t)
	dead := dest("dead", s3test.NewBucketOn(t, srv))
	stop()
	m := e.backup("1000000", primary)

	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	rep, err := repair.Run(ctx, job, []storage.Destination{primary, dead, offsite}, e.trusted(), fast, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rep.Unreachable["dead"]; !ok || len(rep.Unreachable) != 1 {
		t.Fatalf("unreachable = %v, want dead only", rep.Unreachable)
	}
	if len(rep.Copied) != 1 || rep.Copied[0].To != "offsite" || len(rep.Failed) != 0 {
		t.Fatalf("report %+v, want the copy to offsite made and nothing tried on dead", rep)
	}
	e.requireRepaired(offsite, m, primary)
}

// forge replaces m's manifest on d with the same manifest signed by
// another key, as someone with write access to d but not the signing key
// could.
func (e *env) forge(d storage.Destination, m *manifest.Manifest) {
	e.t.Helper()
	data, err := m.Sign(signtest.NewSigner())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := d.Store.Put(e.ctx, manifest.Key(job, m.ID), bytes.NewReader(data)); err != nil {
		e.t.Fatal(err)
	}
}

// TestForgedManifestIsNotCopied: a manifest signed by an unknown key is
// not a backup: it is never copied from, and where a genuine copy of the
// same backup exists elsewhere, the forged object is replaced by it.
func TestForgedManifestIsNotCopied(t *testing.T) {
	e := newEnv(t)
	primary := dest("primary", s3test.NewBucket(t, "primary"))
	offsite := dest("offsite", s3test.NewBucket(t, "offsite"))
	tape := dest("tape", s3test.NewBucket(t, "offsite"))
	only := e.backup("500000", primary)
	e.forge(primary, only)

	rep := e.repair(repair.Options{Attempts: 3, Backoff: time.Second}, primary, offsite)
	if len(rep.Copied) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("report %+v, want nothing copied from a forged manifest (it is not a backup)", rep)
	}
	if k := e.keys(offsite.Store); len(k) != 0 {
		t.Fatalf("offsite holds %v copied from a forged manifest", k)
	}

	both := e.backup("500000", offsite, tape)
	e.forge(offsite, both)
	rep = e.repair(fast, offsite, tape, primary)
	var got []string
	for _, c := range rep.Copied {
		if c.ID == both.ID {
			got = append(got, c.Action+" "+c.From+"->"+c.To)
		}
	}
	slices.Sort(got)
	want := []string{"copy tape->primary", "replace tape->offsite"}
	if !slices.Equal(got, want) {
		t.Fatalf("copies of %s: %v (report %+v), want %v (offsite's manifest is forged: replaced)", both.ID, got, rep, want)
	}
	e.requireRepaired(primary, both, tape)
	e.requireRepaired(offsite, both, tape)
}
