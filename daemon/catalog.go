package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/notify"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// catalog reads job's verified catalog on dests through the runner's
// manifest cache, and reports what it holds that cannot be used.
func (r *Runner) catalog(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) *manifest.Catalog {
	c := manifest.ReadCatalog(ctx, job.Name, dests, manifest.ConfiguredTrust(cfg.Signing), r.Manifests)
	r.observe(ctx, log, c, dests)
	return c
}

// observe reports every manifest key of c that is not used: each is
// logged at every read; the number per destination is set in the
// coffer_untrusted_manifests metric; and each key (with its reason) is
// written to the audit trail and alerted once, the first time it is seen.
// The keys already alerted are remembered in UntrustedFile (or in memory
// without one), and forgotten when they are gone from a destination that
// was listed, so that a key planted again is alerted again.
func (r *Runner) observe(ctx context.Context, log *zap.Logger, c *manifest.Catalog, dests []storage.Destination) {
	for _, in := range c.Incomplete {
		log.Warn("backup incomplete on a destination; not counted there", zap.String("destination", in.Destination), zap.String("backup", in.ID), zap.String("reason", in.Reason))
	}
	var listed []string // destinations whose keys c knows all of
	for _, d := range dests {
		if _, down := c.Unreachable[d.Name]; !down {
			listed = append(listed, d.Name)
		}
	}
	perDest := map[string]int{}
	for _, u := range c.Untrusted {
		perDest[u.Destination]++
		log.Warn("manifest not trusted; not used", zap.String("destination", u.Destination), zap.String("key", u.Key), zap.String("reason", u.Reason))
	}
	for _, d := range listed {
		r.Metrics.Untrusted(c.Job, d, perDest[d])
	}

	fresh, err := r.alerted.update(r.UntrustedFile, c.Job, listed, c.Untrusted)
	if err != nil {
		log.Warn("untrusted manifest keys already alerted not remembered; they may be alerted again", zap.Error(err))
	}
	if len(fresh) == 0 {
		return
	}
	detail := map[string]string{}
	for _, u := range fresh {
		r.record(audit.Event{Action: audit.ActionUntrusted, Job: c.Job, BackupID: u.ID, Destination: u.Destination, Outcome: audit.OutcomeFailed,
			Detail: u.Key + ": " + u.Reason})
	}
	for d, n := range perDest {
		detail[d] = fmt.Sprintf("%d manifest key(s) not trusted", n)
	}
	r.notify(ctx, notify.Event{Time: r.now(), Kind: "untrusted", Job: c.Job, BackupID: fresh[0].ID, Outcome: notify.OutcomeFailed,
		Message: untrustedMessage(fresh), Destinations: detail})
}

// untrustedMessage summarises newly seen untrusted keys for an alert.
func untrustedMessage(us []manifest.Untrusted) string {
	const named = 5
	parts := make([]string, 0, named)
	for _, u := range us[:min(len(us), named)] {
		parts = append(parts, u.String())
	}
	msg := fmt.Sprintf("%d manifest key(s) not trusted and not used (planted, forged or damaged?): %s", len(us), strings.Join(parts, "; "))
	if len(us) > named {
		msg += fmt.Sprintf("; and %d more (see the audit trail or coffer list)", len(us)-named)
	}
	return msg
}

// alertedKeys remembers the untrusted manifest keys already alerted, by
// job, destination, key and reason.
type alertedKeys struct {
	mu     sync.Mutex
	loaded bool
	keys   map[alertedKey]string // -> when first seen (RFC 3339)
}

// alertedKey is one alerted key; its JSON form is an entry of the file.
type alertedKey struct {
	Job         string `json:"job"`
	Destination string `json:"destination"`
	Key         string `json:"key"`
	Reason      string `json:"reason"`
}

// alertedEntry is alertedKey with when it was first seen, in the file.
type alertedEntry struct {
	alertedKey
	Since string `json:"since"`
}

// update records the untrusted keys of job on the listed destinations
// and returns those not alerted before, in a stable order. Keys of job on
// the listed destinations that are no longer untrusted are forgotten.
// With a file, the record is loaded from it once and saved on change; an
// unreadable file starts an empty record (keys are then alerted again).
func (a *alertedKeys) update(file, job string, listed []string, untrusted []manifest.Untrusted) ([]manifest.Untrusted, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var loadErr error
	if !a.loaded {
		a.keys, loadErr = loadAlerted(file)
		a.loaded = true
	}
	now := map[alertedKey]bool{}
	var fresh []manifest.Untrusted
	changed := false
	for _, u := range untrusted {
		k := alertedKey{Job: job, Destination: u.Destination, Key: u.Key, Reason: u.Reason}
		now[k] = true
		if _, seen := a.keys[k]; !seen {
			a.keys[k] = clock.Now().UTC().Format(time.RFC3339)
			fresh = append(fresh, u)
			changed = true
		}
	}
	for k := range a.keys {
		if k.Job == job && slices.Contains(listed, k.Destination) && !now[k] {
			delete(a.keys, k)
			changed = true
		}
	}
	slices.SortFunc(fresh, func(x, y manifest.Untrusted) int {
		return cmp.Or(cmp.Compare(x.Destination, y.Destination), cmp.Compare(x.Key, y.Key))
	})
	if !changed || file == "" {
		return fresh, loadErr
	}
	return fresh, errors.Join(loadErr, saveAlerted(file, a.keys))
}

func loadAlerted(file string) (map[alertedKey]string, error) {
	keys := map[alertedKey]string{}
	if file == "" {
		return keys, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return keys, nil
	}
	if err != nil {
		return keys, fmt.Errorf("read %s: %w", file, err)
	}
	var entries []alertedEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return keys, fmt.Errorf("read %s: %w", file, err)
	}
	for _, e := range entries {
		keys[e.alertedKey] = e.Since
	}
	return keys, nil
}

func saveAlerted(file string, keys map[alertedKey]string) error {
	entries := make([]alertedEntry, 0, len(keys))
	for k, since := range keys {
		entries = append(entries, alertedEntry{k, since})
	}
	slices.SortFunc(entries, func(x, y alertedEntry) int {
		return cmp.Or(cmp.Compare(x.Job, y.Job), cmp.Compare(x.Destination, y.Destination), cmp.Compare(x.Key, y.Key), cmp.Compare(x.Reason, y.Reason))
	})
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(file, append(data, '\n'))
}

// Newest is a daemon.NewestFunc: the time of job's newest verified backup
// whose payload is whole on some destination, by the earlier of the
// backup host's clock and the storage's (manifest.Backup.Dated). A planted or forged
// manifest key does not count (it is reported by the catalog read).
func (r *Runner) Newest(ctx context.Context, cfg *config.Config, job *config.Job) (time.Time, bool, error) {
	dests, err := open.JobDestinations(ctx, cfg, job)
	if err != nil {
		return time.Time{}, false, err
	}
	return r.newestBackup(ctx, r.Log.With(zap.String("job", job.Name)), cfg, job, dests)
}

// newestBackup is Newest on already open destinations. It fails only when
// no destination could be listed.
func (r *Runner) newestBackup(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) (time.Time, bool, error) {
	c := r.catalog(ctx, log, cfg, job, dests)
	if len(dests) > 0 && len(c.Unreachable) == len(dests) {
		return time.Time{}, false, c.Unreachable[dests[0].Name]
	}
	b, ok := c.Newest()
	if !ok {
		return time.Time{}, false, nil
	}
	return b.Dated(), true, nil
}
