package drill_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/storage/fs"
)

func testReport(id string) *drill.Report {
	t0 := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	return &drill.Report{FormatVersion: drill.ReportFormatVersion, ID: id, Job: "app", From: "offsite",
		Started: t0, Finished: t0.Add(time.Minute), TotalSeconds: 60, RTOSeconds: 28800, Result: drill.Passed}
}

// TestDrillReportSignatures: evidence signed by the configured key is
// read; evidence signed by another key, unsigned, or edited after signing
// is refused naming the object, unless signatures are skipped (with a
// warning).
func TestDrillReportSignatures(t *testing.T) {
	ctx := context.Background()
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := signtest.NewSigner(), signtest.NewSigner()
	good := testReport("20261101T040000.000Z-0001")
	forged := testReport("20261102T040000.000Z-0002")
	unsigned := testReport("20261103T040000.000Z-0003")
	for _, w := range []struct {
		r *drill.Report
		s *sign.Signer
	}{{good, ours}, {forged, theirs}, {unsigned, nil}} {
		if err := drill.WriteReport(ctx, store, w.r, w.s); err != nil {
			t.Fatal(err)
		}
	}
	edited := testReport("20261104T040000.000Z-0004")
	if err := drill.WriteReport(ctx, store, edited, ours); err != nil {
		t.Fatal(err)
	}
	key := drill.ReportKey("app", edited.ID)
	rc, _ := store.Get(ctx, key)
	buf := new(strings.Builder)
	_, _ = io.Copy(buf, rc)
	rc.Close()
	store.Delete(ctx, key)
	store.Put(ctx, key, strings.NewReader(strings.Replace(buf.String(), `"result":"passed"`, `"result":"failed"`, 1)))

	trust := signtest.Trust(ours)
	reports, bad, err := drill.ReadReports(ctx, store, "app", trust)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].ID != good.ID {
		t.Errorf("accepted %d reports, want only %s", len(reports), good.ID)
	}
	for id, want := range map[string]string{forged.ID: "unknown key", unsigned.ID: "not signed", edited.ID: "bad signature"} {
		err := bad[drill.ReportKey("app", id)]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("report %s: error %v, want %q", id, err, want)
		}
	}
	// The newest report that verifies, past the three newer bad ones.
	if latest, err := drill.LatestReport(ctx, store, "app", trust); err != nil || latest == nil || latest.ID != good.ID {
		t.Errorf("LatestReport = %+v, %v; want %s", latest, err, good.ID)
	}

	var warned []string
	trust.SkipSignature = true
	trust.Warn = func(object string, err error) { warned = append(warned, object) }
	reports, _, _ = drill.ReadReports(ctx, store, "app", trust)
	if len(reports) != 4 || len(warned) != 3 {
		t.Errorf("with signatures skipped: %d reports, %d warnings; want 4 and 3", len(reports), len(warned))
	}
}
