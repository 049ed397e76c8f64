package backup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/storage"
)

// TestConfiguredJob: the configured job's settings, the signer and the
// destinations given, and the configured public keys as the trust that
// reads earlier manifests.
func TestConfiguredJob(t *testing.T) {
	signer := signtest.NewSigner()
	cfg := &config.Config{Signing: config.Signing{PublicKeys: []sign.PublicKey{signer.Public()}}}
	j := &config.Job{
		Name:             "app",
		Source:           config.Source{Type: "sqlite", Path: "/var/lib/app.db"},
		Recipients:       []string{"age1example"},
		Compression:      config.Compression{Level: 7, Threads: 3},
		StallTimeout:     config.Duration(90 * time.Second),
		MaxShrinkPercent: 40,
	}
	dests := []storage.Destination{{Name: "primary", Store: newStore(t)}}
	bj, err := backup.ConfiguredJob(cfg, j, signer, dests, "")
	if err != nil {
		t.Fatal(err)
	}
	if bj.Name != "app" || bj.Source == nil || len(bj.Recipients) != 1 || bj.Recipients[0] != "age1example" ||
		bj.Level != 7 || bj.Threads != 3 || bj.StallTimeout != 90*time.Second || bj.MaxShrinkPercent != 40 ||
		bj.Signer != signer || len(bj.Destinations) != 1 || bj.Destinations[0].Name != "primary" {
		t.Errorf("ConfiguredJob = %+v", bj)
	}
	if bj.Trust.Verifier == nil || bj.Trust.SkipSignature {
		t.Errorf("trust %+v, want the configured public keys, checked", bj.Trust)
	}

	j.Source = config.Source{Type: "oracle"}
	if _, err := backup.ConfiguredJob(cfg, j, signer, dests, ""); err == nil || !strings.Contains(err.Error(), "oracle") {
		t.Errorf("unknown source type: err %v, want one naming it", err)
	}
}
