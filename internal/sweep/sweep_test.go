package sweep_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/sweep"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/s3"
)

const grace = time.Hour

func put(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if _, err := s.Put(t.Context(), key, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
}

func uploadKeys(t *testing.T, s storage.UploadLister) []string {
	t.Helper()
	var out []string
	for u, err := range s.Uploads(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u.Key)
	}
	slices.Sort(out)
	return out
}

func itemKeys(items []sweep.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func without(all []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(drop, k) })
}

// rawClient is an S3 client on srv, for starting uploads the way a killed
// process leaves them: created, never completed.
func rawClient(srv testenv.S3Server) *awss3.Client {
	return awss3.NewFromConfig(aws.Config{
		Region:      srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	}, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(srv.Endpoint)
		o.UsePathStyle = true
	})
}

// TestSweepS3: on a real bucket, Sweep aborts exactly the stale unfinished
// upload and disposes of exactly the old orphan payload; complete backups,
// young orphans, non-payload files, unrecognised keys and _coffer/ stay,
// and nothing is touched while everything is younger than the grace.
func TestSweepS3(t *testing.T) {
	srv := testenv.S3(t, "primary")
	bucket := s3test.Options(srv).Bucket
	st := s3test.NewBucket(t, "primary", func(o *s3.Options) { o.Bucket, o.Prefix = bucket, "tenant-a" })
	raw := rawClient(srv)
	ctx := t.Context()
	realNow := time.Now()
	later := realNow.Add(2 * grace) // everything written now is stale then

	startUpload := func(key string) {
		t.Helper()
		if _, err := raw.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("tenant-a/" + key)}); err != nil {
			t.Fatal(err)
		}
	}

	oldID := manifest.NewID(realNow.Add(-time.Minute))
	orphan := manifest.PayloadKey("app", oldID, "sqlite")
	put(t, st, orphan)
	put(t, st, manifest.Dir("app", oldID)+"notes.txt") // not a payload: stays

	doneID := manifest.NewID(realNow.Add(-2 * time.Minute))
	put(t, st, manifest.PayloadKey("app", doneID, "sqlite"))
	put(t, st, manifest.Key("app", doneID))
	startUpload(manifest.Dir("app", doneID) + "payload.sqlite.zst.age") // in a complete folder: stays

	// Started, by its id, inside the grace before `later`.
	youngID := manifest.NewID(later.Add(-grace / 2))
	put(t, st, manifest.PayloadKey("app", youngID, "sqlite"))

	staleUpload := manifest.PayloadKey("db2", manifest.NewID(realNow), "pg-custom")
	startUpload(staleUpload)
	startUpload("_coffer/audit/2026.jsonl")
	startUpload("scratch/payload.sqlite.zst.age")

	put(t, st, "_coffer/drills/app/"+oldID+".json")
	put(t, st, "app/not-an-id/payload.sqlite.zst.age")
	put(t, st, "payload.sqlite.zst.age")

	objects, uploads := backuptest.Keys(t, st), uploadKeys(t, st)
	dest := storage.Destination{Name: "primary", Store: st}

	rep, err := sweep.Sweep(ctx, dest, grace, realNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Aborted)+len(rep.Deleted)+len(rep.Errors) != 0 {
		t.Fatalf("Sweep at the real time touched young items: %+v", rep)
	}

	// A job's sweep leaves other jobs' leftovers alone.
	rep, err = sweep.SweepJob(ctx, dest, "web", grace, later, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Aborted)+len(rep.Deleted)+len(rep.Errors) != 0 {
		t.Fatalf("SweepJob(web) touched other jobs' items: %+v", rep)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	rep, err = sweep.Sweep(ctx, dest, grace, later, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	if got := itemKeys(rep.Aborted); !slices.Equal(got, []string{staleUpload}) {
		t.Errorf("aborted %v, want only %s", got, staleUpload)
	}
	if got := itemKeys(rep.Deleted); !slices.Equal(got, []string{orphan}) {
		t.Errorf("deleted %v, want only %s", got, orphan)
	}
	for _, it := range append(rep.Aborted, rep.Deleted...) {
		if it.Age < 2*grace-time.Minute || it.Age > 2*grace+5*time.Minute {
			t.Errorf("%s: age %s, want about %s", it.Key, it.Age, 2*grace)
		}
	}
	if got, want := backuptest.Keys(t, st), without(objects, orphan); !slices.Equal(got, want) {
		t.Errorf("objects after sweep:\n got %v\nwant %v", got, want)
	}
	if got, want := uploadKeys(t, st), without(uploads, staleUpload); !slices.Equal(got, want) {
		t.Errorf("uploads after sweep:\n got %v\nwant %v", got, want)
	}
	var logged []string
	for _, e := range logs.FilterLevelExact(zapcore.InfoLevel).All() {
		logged = append(logged, e.ContextMap()["key"].(string))
	}
	slices.Sort(logged)
	if want := []string{orphan, staleUpload}; !slices.Equal(logged, want) {
		t.Errorf("info logs name %v, want %v", logged, want)
	}
}

// TestSweepLockedOrphan: an orphan protected by Object Lock stays and is
// reported as storage.ErrLocked; the sweep goes on.
func TestSweepLockedOrphan(t *testing.T) {
	st := s3test.NewBucketWith(t, "primary", s3.BucketOptions{ObjectLock: true}, func(o *s3.Options) {
		o.LockMode, o.LockFor = s3.LockGovernance, time.Hour
	})
	orphan := manifest.PayloadKey("app", manifest.NewID(time.Now()), "sqlite")
	put(t, st, orphan)

	rep, err := sweep.Sweep(t.Context(), storage.Destination{Name: "locked", Store: st}, grace, time.Now().Add(2*grace), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 0 || len(rep.Errors) != 1 || !errors.Is(rep.Errors[0], storage.ErrLocked) {
		t.Fatalf("report %+v, want no deletion and one storage.ErrLocked", rep)
	}
	if !strings.Contains(rep.Errors[0].Error(), orphan) {
		t.Errorf("error %q does not name the key", rep.Errors[0])
	}
	if _, err := st.Stat(t.Context(), orphan); err != nil {
		t.Errorf("locked orphan gone: %v", err)
	}
}

// TestSweepLocal: on a directory, temporary files a crash left behind are
// swept like unfinished uploads, by their modification time.
func TestSweepLocal(t *testing.T) {
	st, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-2 * grace)
	age := func(key string, mtime time.Time) {
		t.Helper()
		if err := os.Chtimes(filepath.Join(st.Root(), key), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	temp := func(key string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(st.Root(), key)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		age(key, mtime)
	}

	oldID := manifest.NewID(old)
	orphan := manifest.PayloadKey("app", oldID, "sqlite")
	put(t, st, orphan)
	age(orphan, old)
	staleTemp := manifest.Dir("app", oldID) + ".coffer-tmp-111"
	temp(staleTemp, old)

	youngID := manifest.NewID(old)
	youngOrphan := manifest.PayloadKey("app", youngID, "sqlite")
	put(t, st, youngOrphan) // modified now: a backup may still be running
	temp(manifest.Dir("app", youngID)+".coffer-tmp-222", now)

	doneID := manifest.NewID(old)
	put(t, st, manifest.PayloadKey("app", doneID, "sqlite"))
	put(t, st, manifest.Key("app", doneID))
	age(manifest.PayloadKey("app", doneID, "sqlite"), old)
	temp(manifest.Dir("app", doneID)+".coffer-tmp-333", old)

	objects, uploads := backuptest.Keys(t, st), uploadKeys(t, st)
	rep, err := sweep.Sweep(t.Context(), storage.Destination{Name: "local", Store: st}, grace, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	if got := itemKeys(rep.Aborted); !slices.Equal(got, []string{staleTemp}) {
		t.Errorf("aborted %v, want only %s", got, staleTemp)
	}
	if got := itemKeys(rep.Deleted); !slices.Equal(got, []string{orphan}) {
		t.Errorf("deleted %v, want only %s", got, orphan)
	}
	if got, want := backuptest.Keys(t, st), without(objects, orphan); !slices.Equal(got, want) {
		t.Errorf("objects after sweep:\n got %v\nwant %v", got, want)
	}
	if got, want := uploadKeys(t, st), without(uploads, staleTemp); !slices.Equal(got, want) {
		t.Errorf("temporary files after sweep:\n got %v\nwant %v", got, want)
	}
}

func TestSweepRefusesNoGrace(t *testing.T) {
	st, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, manifest.PayloadKey("app", manifest.NewID(time.Now().Add(-time.Hour)), "sqlite"))
	if _, err := sweep.Sweep(t.Context(), storage.Destination{Name: "local", Store: st}, 0, time.Now(), nil); err == nil {
		t.Fatal("Sweep with no grace period ran")
	}
	if n := len(backuptest.Keys(t, st)); n != 1 {
		t.Errorf("%d objects left, want 1", n)
	}
}
