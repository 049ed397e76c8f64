package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/internal/notify"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// plantedKey is a manifest key an attacker with write access to a bucket
// can put there: the newest id there can be, any content.
const plantedKey = "app/29991231T235959.999Z-0000/manifest.json"

// webhook is a TLS webhook that keeps the events it receives.
type webhook struct {
	mu     sync.Mutex
	events []map[string]any
}

func newWebhook(t *testing.T) (*webhook, *notify.Notifier) {
	t.Helper()
	w := &webhook{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev map[string]any
		json.Unmarshal(body, &ev)
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	n := notify.New(config.Notify{Webhooks: []config.Secret{config.NewSecret(srv.URL)}}, zaptest.NewLogger(t), notify.WithHTTPClient(srv.Client()))
	return w, n
}

func (w *webhook) received() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]any(nil), w.events...)
}

// TestUntrustedKeysAlertedOnce takes a real backup to two local
// directories, plants a far-future key on one and a newer manifest
// signed by an unknown key on the other, and reads the catalog twice, as
// the daemon's passes do. The newest backup is the real one (the planted
// keys do not make the job look fresh); each key is counted in the
// metric on every pass, but audited and alerted once; a restarted runner
// with the same state file does not alert again; a key that is gone and
// planted again is alerted again.
func TestUntrustedKeysAlertedOnce(t *testing.T) {
	signer := signtest.NewSigner()
	cfg := &config.Config{Signing: config.Signing{PublicKeys: []sign.PublicKey{signer.Public()}}}
	job := &config.Job{Name: "app"}
	dests := realBackup(t, signer)
	real, err := manifest.ReadCatalog(context.Background(), "app", dests, manifest.ConfiguredTrust(cfg.Signing), nil).Locate("")
	if err != nil {
		t.Fatal(err)
	}
	put(t, dests[0].Store, plantedKey, []byte("{}"))
	forgedID := manifest.NewID(time.Date(2999, 6, 1, 0, 0, 0, 0, time.UTC))
	forged := *real.Manifest
	forged.ID = forgedID
	forged.Payload.Key = manifest.PayloadKey("app", forgedID, forged.Source.Format)
	forged.Copies = []manifest.Copy{{Destination: "offsite", Key: forged.Payload.Key, Bytes: forged.Payload.Bytes, SHA256: forged.Payload.SHA256}}
	put(t, dests[1].Store, forged.Payload.Key, make([]byte, forged.Payload.Bytes))
	if err := manifest.Write(context.Background(), dests[1].Store, &forged, signtest.NewSigner()); err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	auditLog, err := audit.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer auditLog.Close()
	hook, n := newWebhook(t)
	newRunner := func() *Runner {
		r := &Runner{Log: zaptest.NewLogger(t), Audit: auditLog, Metrics: metrics.New(), UntrustedFile: filepath.Join(state, "untrusted-alerted.json")}
		r.SetNotifier(n)
		return r
	}
	r := newRunner()
	ctx := context.Background()
	for pass := 1; pass <= 2; pass++ {
		newest, ok, err := r.newestBackup(ctx, r.Log, cfg, job, dests)
		if err != nil || !ok || !newest.Equal(real.Time()) {
			t.Fatalf("pass %d: newest backup %v, %v, %v; want the real one, %v", pass, newest, ok, err, real.Time())
		}
		for _, d := range []string{"primary", "offsite"} {
			if got := metric(t, r.Metrics, "coffer_untrusted_manifests", "job", job.Name, "destination", d); got != 1 {
				t.Errorf("pass %d: coffer_untrusted_manifests on %s = %v, want 1", pass, d, got)
			}
		}
	}
	evs := hook.received()
	if len(evs) != 1 {
		t.Fatalf("%d alerts after two passes, want 1: %v", len(evs), evs)
	}
	msg, _ := evs[0]["message"].(string)
	if evs[0]["kind"] != "untrusted" || !strings.Contains(msg, plantedKey) || !strings.Contains(msg, manifest.Key("app", forgedID)) {
		t.Errorf("alert %v, want kind untrusted naming both keys", evs[0])
	}
	if got := auditEvents(t, auditLog, audit.ActionUntrusted); len(got) != 2 {
		t.Fatalf("audit events %+v, want one per key", got)
	}

	// A restart remembers what was alerted.
	r = newRunner()
	r.newestBackup(ctx, r.Log, cfg, job, dests)
	if got := len(hook.received()); got != 1 {
		t.Fatalf("%d alerts after a restart, want still 1", got)
	}

	// Gone, then planted again: alerted again.
	if err := dests[0].Store.Delete(ctx, plantedKey); err != nil {
		t.Fatal(err)
	}
	r.newestBackup(ctx, r.Log, cfg, job, dests)
	if got := metric(t, r.Metrics, "coffer_untrusted_manifests", "job", job.Name, "destination", "primary"); got != 0 {
		t.Errorf("coffer_untrusted_manifests on primary after the key was removed = %v, want 0", got)
	}
	put(t, dests[0].Store, plantedKey, []byte("{}"))
	r.newestBackup(ctx, r.Log, cfg, job, dests)
	if evs := hook.received(); len(evs) != 2 || !strings.Contains(evs[1]["message"].(string), plantedKey) {
		t.Fatalf("alerts %v, want a second one for the key planted again", evs)
	}
	if got := auditEvents(t, auditLog, audit.ActionUntrusted); len(got) != 3 {
		t.Fatalf("%d audit events, want 3", len(got))
	}
}

// realBackup takes one backup of a small file to a primary and an
// offsite directory, signed by signer.
func realBackup(t *testing.T, signer *sign.Signer) []storage.Destination {
	t.Helper()
	dests := backuptest.LocalDestinations(t, "primary", "offsite")
	backuptest.Backup(t, dests, "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", signer, []byte(strings.Repeat("pupil,lesson\n", 1000)))
	return dests
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
}
