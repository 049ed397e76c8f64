package open_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/open"
	"github.com/coffer-backup/coffer/storage/s3"
)

func TestLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	s, err := open.Store(context.Background(), &config.Destination{Name: "disk", Type: "local", Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*fs.Store); !ok {
		t.Fatalf("got %T, want *fs.Store", s)
	}
	if s.String() != "file://"+filepath.ToSlash(dir) {
		t.Errorf("String() = %q", s.String())
	}
}

func TestS3(t *testing.T) {
	d := &config.Destination{
		Name:            "offsite",
		Type:            "s3",
		Endpoint:        "https://s3.example.net",
		Bucket:          "backups",
		Prefix:          "tenant-a",
		PathStyle:       true,
		AccessKeyID:     "AKIAEXAMPLE",
		SecretAccessKey: config.NewSecret("do-not-print-me"),
	}
	s, err := open.Store(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*s3.Store); !ok {
		t.Fatalf("got %T, want *s3.Store", s)
	}
	if got, want := s.String(), "s3://backups/tenant-a (s3.example.net)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if strings.Contains(s.String(), "do-not-print-me") {
		t.Error("String() leaks the secret")
	}
}

// TestS3RealServer checks that the static credentials really reach the
// server: listing a missing bucket with the right keys fails with
// NoSuchBucket, not an authentication error.
func TestS3RealServer(t *testing.T) {
	srv := testenv.S3(t, "primary")
	d := &config.Destination{
		Name: "primary", Type: "s3", Endpoint: srv.Endpoint, Region: srv.Region,
		Bucket: "coffer-open-test-missing", PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: config.NewSecret(srv.SecretKey),
	}
	s, err := open.Store(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	var listErr error
	for _, err := range s.List(t.Context(), "") {
		listErr = err
	}
	if listErr == nil || !strings.Contains(listErr.Error(), "NoSuchBucket") {
		t.Errorf("List on a missing bucket: %v, want NoSuchBucket", listErr)
	}
}

func TestErrors(t *testing.T) {
	for _, d := range []*config.Destination{
		nil,
		{Name: "x", Type: "ftp"},
		{Name: "x", Type: "s3"},    // no bucket
		{Name: "x", Type: "local"}, // no path
	} {
		if _, err := open.Store(context.Background(), d); err == nil {
			t.Errorf("open.Store(%+v) succeeded", d)
		}
	}
}

// TestJobDestination opens the one destination asked for, and refuses a
// destination the job does not have (even one the config defines).
func TestJobDestination(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{Destinations: map[string]*config.Destination{
		"primary": {Name: "primary", Type: "local", Path: filepath.Join(dir, "primary")},
		"offsite": {Name: "offsite", Type: "local", Path: filepath.Join(dir, "offsite")},
		"other":   {Name: "other", Type: "local", Path: filepath.Join(dir, "other")},
	}}
	job := &config.Job{Name: "app", Destinations: []string{"primary", "offsite"}}
	d, err := open.JobDestination(ctx, cfg, job, "offsite")
	if err != nil || d.Name != "offsite" || d.Store.String() != "file://"+filepath.ToSlash(filepath.Join(dir, "offsite")) {
		t.Fatalf("JobDestination(offsite) = %v %v, %v", d.Name, d.Store, err)
	}
	if _, err := open.JobDestination(ctx, cfg, job, "other"); err == nil || !strings.Contains(err.Error(), "job app has no destination other") {
		t.Fatalf("JobDestination(other) error %v, want one saying the job has no such destination", err)
	}
}
