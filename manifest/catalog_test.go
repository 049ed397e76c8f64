package manifest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// putBackup stores a payload of size bytes and its manifest (a copy
// recorded on primary only), signed by signer, for backup id of job "app"
// on s, and returns the manifest.
func putBackup(t *testing.T, s storage.Store, signer *sign.Signer, id string, size int, seq int64) *manifest.Manifest {
	t.Helper()
	payload := make([]byte, size)
	m := backuptest.Fake(t, "app", id, payload, "primary")
	m.Sequence = seq
	backuptest.Put(t, signer, m, payload, s)
	return m
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func fsStore(t *testing.T) storage.Store {
	t.Helper()
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func id(day int) string {
	return manifest.NewID(time.Date(2026, 11, day, 2, 0, 0, 0, time.UTC))
}

// TestCatalogUsesOnlyVerifiedWholeBackups plants on two real local
// destinations every kind of key an attacker with write access to one
// bucket (or an interrupted run) can leave, and checks that only verified
// manifests with a whole payload become backups, and that every other key
// is listed with its reason rather than dropped.
func TestCatalogUsesOnlyVerifiedWholeBackups(t *testing.T) {
	ctx := context.Background()
	signer, stranger := signtest.NewSigner(), signtest.NewSigner()
	trust := signtest.Trust(signer)
	primary, offsite := fsStore(t), fsStore(t)
	dests := []storage.Destination{{Name: "primary", Store: primary}, {Name: "offsite", Store: offsite}}

	b1, b2, b3, b4 := id(1), id(8), id(15), id(16)
	for _, s := range []storage.Store{primary, offsite} {
		putBackup(t, s, signer, b1, 500, 1)
		putBackup(t, s, signer, b2, 600, 2)
	}
	// The payload of b2 on offsite is cut short after its manifest was
	// written.
	put(t, offsite, manifest.PayloadKey("app", b2, "sqlite"), make([]byte, 300))
	// b3 only on offsite, whole: a copy no other destination has.
	putBackup(t, offsite, signer, b3, 700, 3)
	// A planted far-future key with junk in it.
	planted := "app/29991231T235959.999Z-0000/manifest.json"
	put(t, offsite, planted, []byte("{not json"))
	// A well-formed manifest signed by a key nobody trusts.
	putBackup(t, primary, stranger, b4, 800, 9)
	// b1's genuine manifest replayed under another backup's key.
	rc, err := primary.Get(ctx, manifest.Key("app", b1))
	if err != nil {
		t.Fatal(err)
	}
	genuine := new(bytes.Buffer)
	genuine.ReadFrom(rc)
	rc.Close()
	replayed := manifest.Key("app", id(20))
	put(t, primary, replayed, genuine.Bytes())
	// A key that names no backup.
	put(t, primary, "app/latest/manifest.json", genuine.Bytes())

	c := manifest.ReadCatalog(ctx, "app", dests, trust, nil)

	var got []string
	for _, b := range c.Backups {
		got = append(got, b.ID+"@"+strings.Join(b.Destinations, ","))
	}
	want := []string{b1 + "@primary,offsite", b2 + "@primary", b3 + "@offsite"}
	if !slices.Equal(got, want) {
		t.Fatalf("backups = %v, want %v", got, want)
	}
	newest, ok := c.Newest()
	if !ok || newest.ID != b3 || newest.Manifest.Sequence != 3 {
		t.Fatalf("newest = %+v, want %s (sequence 3): a planted key must not be newest", newest, b3)
	}
	if b, err := c.Locate(""); err != nil || b.ID != b3 {
		t.Fatalf("Locate(\"\") = %v, %v", b.ID, err)
	}
	if _, err := c.Locate(b4); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("Locate(forged) = %v, want not found naming the unknown key", err)
	}

	reasons := map[string]string{}
	for _, u := range c.Untrusted {
		reasons[u.Key+" on "+u.Destination] = u.Reason
	}
	for key, want := range map[string]string{
		planted + " on offsite":                 "",
		manifest.Key("app", b4) + " on primary": "unknown key",
		replayed + " on primary":                "describes backup app/" + b1,
		"app/latest/manifest.json on primary":   "not a backup manifest key",
	} {
		r, ok := reasons[key]
		if !ok {
			t.Errorf("untrusted: %s not listed (got %v)", key, reasons)
			continue
		}
		if !strings.Contains(r, want) {
			t.Errorf("untrusted %s: reason %q, want it to say %q", key, r, want)
		}
	}
	if len(c.Untrusted) != 4 {
		t.Errorf("untrusted = %v, want 4 entries", c.Untrusted)
	}
	if len(c.Incomplete) != 1 || c.Incomplete[0].ID != b2 || c.Incomplete[0].Destination != "offsite" ||
		!strings.Contains(c.Incomplete[0].Reason, "300 bytes, the manifest says 600") {
		t.Errorf("incomplete = %+v, want b2 on offsite, 300 of 600 bytes", c.Incomplete)
	}
	if on := c.On("offsite"); len(on) != 2 || on[0].ID != b1 || on[1].ID != b3 {
		t.Errorf("On(offsite) = %v, want b1 and b3", on)
	}
	if c.Fetched != 8 {
		t.Errorf("fetched %d manifests, want 8 (every manifest key that names a backup, once)", c.Fetched)
	}
}

// failingList is a store whose listing fails (a destination down).
type failingList struct{ storage.Store }

func (failingList) List(context.Context, string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		yield(storage.ObjectInfo{}, errors.New("connection refused"))
	}
}

func TestCatalogNamesUnreachableDestinations(t *testing.T) {
	signer := signtest.NewSigner()
	primary := fsStore(t)
	dests := []storage.Destination{{Name: "primary", Store: failingList{primary}}}
	putBackup(t, primary, signer, id(1), 10, 1)
	c := manifest.ReadCatalog(context.Background(), "app", dests, signtest.Trust(signer), nil)
	if len(c.Backups) != 0 || c.Unreachable["primary"] == nil {
		t.Fatalf("catalog = %+v, want primary unreachable and no backups", c)
	}
	_, err := c.Locate("")
	if !errors.Is(err, manifest.ErrNoBackup) || !strings.Contains(err.Error(), "primary unreachable: ") {
		t.Fatalf("Locate = %v, want ErrNoBackup naming the unreachable destination", err)
	}
}

// TestCatalogCacheOnRealS3 checks, against a real MinIO, that the cache
// saves the GETs of manifests already read under the same ETag, that what
// it serves is verified again (an edited cache file is fetched again, and
// a cache cannot make an untrusted manifest trusted), and that a replaced
// object is fetched again.
func TestCatalogCacheOnRealS3(t *testing.T) {
	ctx := context.Background()
	signer := signtest.NewSigner()
	trust := signtest.Trust(signer)
	store := s3test.NewBucket(t, "primary")
	dests := []storage.Destination{{Name: "primary", Store: store}}
	ids := []string{id(1), id(8), id(15)}
	for i, b := range ids {
		putBackup(t, store, signer, b, 100+i, int64(i+1))
	}
	dir := filepath.Join(t.TempDir(), "manifests")
	cache, err := manifest.OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir mode = %v, %v; want 0700", fi.Mode(), err)
	}

	first := manifest.ReadCatalog(ctx, "app", dests, trust, cache)
	second := manifest.ReadCatalog(ctx, "app", dests, trust, cache)
	if first.Fetched != 3 || second.Fetched != 0 {
		t.Fatalf("fetched %d then %d manifests, want 3 then 0", first.Fetched, second.Fetched)
	}
	if len(second.Backups) != 3 || second.Backups[2].Manifest.Sequence != 3 {
		t.Fatalf("cached catalog = %+v, want the same 3 backups", second.Backups)
	}

	// An edited cache entry is not believed: it is fetched again.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 3 {
		t.Fatalf("cache holds %d files, want 3", len(files))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		os.WriteFile(f, bytes.Replace(data, []byte(`"sequence": `), []byte(`"sequence": 9`), 1), 0o600)
	}
	third := manifest.ReadCatalog(ctx, "app", dests, trust, cache)
	if third.Fetched != 3 || len(third.Backups) != 3 || third.Backups[0].Manifest.Sequence != 1 {
		t.Fatalf("after editing the cache: fetched %d, backups %d; want 3 fetched and the stored sequences", third.Fetched, len(third.Backups))
	}

	// A manifest replaced in the bucket (new ETag) is read again, and a
	// forged one is refused even though the old bytes were cached.
	forger := signtest.NewSigner()
	if err := store.Delete(ctx, manifest.Key("app", ids[2])); err != nil {
		t.Fatal(err)
	}
	putBackup(t, store, forger, ids[2], 102, 99)
	fourth := manifest.ReadCatalog(ctx, "app", dests, trust, cache)
	if fourth.Fetched != 1 || len(fourth.Backups) != 2 || len(fourth.Untrusted) != 1 {
		t.Fatalf("after replacing a manifest: fetched %d, %d backups, untrusted %v; want 1, 2, the forged one", fourth.Fetched, len(fourth.Backups), fourth.Untrusted)
	}
}

// flakyGet is a store whose Get of one key fails as the network would, or
// finds the object gone (deleted between the listing and the read).
type flakyGet struct {
	storage.Store
	key string
	err error
}

func (f flakyGet) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == f.key {
		return nil, f.err
	}
	return f.Store.Get(ctx, key)
}

// TestCatalogUnreadableManifest checks that a manifest listed but not
// readable (a network error) is not called untrusted (which would alert
// on every flaky read) and that nothing on that destination is decided
// on: it is unreachable this time. A manifest deleted between the listing
// and the read is simply gone.
func TestCatalogUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	signer := signtest.NewSigner()
	primary, offsite := fsStore(t), fsStore(t)
	b1, b2 := id(1), id(8)
	for _, s := range []storage.Store{primary, offsite} {
		putBackup(t, s, signer, b1, 10, 1)
		putBackup(t, s, signer, b2, 10, 2)
	}
	dests := []storage.Destination{
		{Name: "primary", Store: flakyGet{primary, manifest.Key("app", b1), errors.New("read: connection reset by peer")}},
		{Name: "offsite", Store: flakyGet{offsite, manifest.Key("app", b1), fmt.Errorf("get: %w", storage.ErrNotExist)}},
	}
	c := manifest.ReadCatalog(ctx, "app", dests, signtest.Trust(signer), nil)
	if err := c.Unreachable["primary"]; err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("primary: unreachable = %v, want the read error", err)
	}
	if len(c.Untrusted) != 0 {
		t.Errorf("untrusted = %v, want none (a read error is not a forgery)", c.Untrusted)
	}
	if len(c.Backups) != 1 || c.Backups[0].ID != b2 || !slices.Equal(c.Backups[0].Destinations, []string{"offsite"}) {
		t.Errorf("backups = %+v, want only %s on offsite", c.Backups, b2)
	}
}

// TestCatalogDatedByBothClocks: a backup whose id a fast host clock dated
// two days ahead is, for "was the job backed up recently?", only as new
// as the storage says it was stored; an old id stays old.
func TestCatalogDatedByBothClocks(t *testing.T) {
	signer := signtest.NewSigner()
	store := fsStore(t)
	ahead := manifest.NewID(time.Now().Add(48 * time.Hour))
	old := id(1)
	putBackup(t, store, signer, old, 10, 1)
	putBackup(t, store, signer, ahead, 10, 2)
	c := manifest.ReadCatalog(context.Background(), "app", []storage.Destination{{Name: "primary", Store: store}}, signtest.Trust(signer), nil)
	newest, ok := c.Newest()
	if !ok || newest.ID != ahead {
		t.Fatalf("newest = %+v, want %s", newest, ahead)
	}
	if d := time.Since(newest.Dated()); d < -time.Minute || d > time.Minute {
		t.Errorf("a backup stored now but dated 2 days ahead: Dated %v, want about now", newest.Dated())
	}
	if !newest.Time().After(time.Now().Add(47 * time.Hour)) {
		t.Errorf("Time %v, want the id's time", newest.Time())
	}
	if b, _ := c.Find(old); !b.Dated().Equal(b.Time()) {
		t.Errorf("an old id stored now: Dated %v, want its id's time %v", b.Dated(), b.Time())
	}
}
