package sweep

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// Item is one swept upload or object.
type Item struct {
	Key string        // relative to the destination's store
	Age time.Duration // now minus the upload's start or the object's last modification
}

// Report says what one Sweep did at one destination.
type Report struct {
	Destination string
	Aborted     []Item  // unfinished uploads aborted
	Deleted     []Item  // orphan payloads disposed of
	Errors      []error // items that could not be swept (e.g. storage.ErrLocked); the others were
}

// folder is what one backup folder holds.
type folder struct {
	hasManifest bool
	payloads    []storage.ObjectInfo
}

// Sweep aborts the unfinished uploads and disposes of the orphan payloads
// (payloads whose backup folder has no manifest) at dest that are older
// than now - grace, logging each at info level. A failure to sweep one item
// goes into Report.Errors and the sweep goes on; the returned error is
// non-nil only when the sweep could not run to its end (a listing failed,
// ctx was cancelled). grace must be positive. log may be nil.
func Sweep(ctx context.Context, dest storage.Destination, grace time.Duration, now time.Time, log *zap.Logger) (Report, error) {
	return sweep(ctx, dest, "", grace, now, log)
}

// SweepJob is Sweep limited to one job's folder, so a job's cycle never
// touches another job's uploads (which may be running).
func SweepJob(ctx context.Context, dest storage.Destination, job string, grace time.Duration, now time.Time, log *zap.Logger) (Report, error) {
	if job == "" || strings.Contains(job, "/") {
		return Report{Destination: dest.Name}, fmt.Errorf("sweep %s: invalid job name %q", dest.Name, job)
	}
	return sweep(ctx, dest, layout.Job(job), grace, now, log)
}

// sweep sweeps the keys under prefix.
func sweep(ctx context.Context, dest storage.Destination, prefix string, grace time.Duration, now time.Time, log *zap.Logger) (Report, error) {
	rep := Report{Destination: dest.Name}
	if grace <= 0 {
		return rep, fmt.Errorf("sweep %s: grace period %s must be positive", dest.Name, grace)
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("destination", dest.Name))
	cutoff := now.Add(-grace)

	folders := map[string]*folder{}
	var dirs []string // in listing order
	for obj, err := range dest.Store.List(ctx, prefix) {
		if err != nil {
			return rep, fmt.Errorf("sweep %s: %w", dest.Name, err)
		}
		dir, name, _, ok := backupKey(obj.Key)
		if !ok {
			continue
		}
		f := folders[dir]
		if f == nil {
			f = &folder{}
			folders[dir] = f
			dirs = append(dirs, dir)
		}
		switch {
		case name == manifest.FileName:
			f.hasManifest = true
		case layout.IsPayloadName(name):
			f.payloads = append(f.payloads, obj)
		}
	}

	if ul, ok := dest.Store.(storage.UploadLister); ok {
		var stale []storage.Upload
		for u, err := range ul.Uploads(ctx, prefix) {
			if err != nil {
				return rep, fmt.Errorf("sweep %s: %w", dest.Name, err)
			}
			dir, _, id, ok := backupKey(u.Key)
			if !ok || (folders[dir] != nil && folders[dir].hasManifest) || !old(u.Initiated, id, cutoff) {
				continue
			}
			stale = append(stale, u)
		}
		for _, u := range stale {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if err := ul.AbortUpload(ctx, u); err != nil {
				rep.Errors = append(rep.Errors, fmt.Errorf("sweep %s: abort upload of %s: %w", dest.Name, u.Key, err))
				continue
			}
			it := Item{Key: u.Key, Age: now.Sub(u.Initiated)}
			rep.Aborted = append(rep.Aborted, it)
			log.Info("aborted unfinished upload", zap.String("key", it.Key), zap.Duration("age", it.Age))
		}
	}

	for _, dir := range dirs {
		f := folders[dir]
		if f.hasManifest {
			continue
		}
		for _, obj := range f.payloads {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			_, _, id, _ := backupKey(obj.Key)
			if !old(obj.ModTime, id, cutoff) {
				continue
			}
			// The backup may have committed since the listing.
			if _, err := dest.Store.Stat(ctx, dir+manifest.FileName); err == nil {
				break
			} else if !errors.Is(err, storage.ErrNotExist) {
				rep.Errors = append(rep.Errors, fmt.Errorf("sweep %s: %w", dest.Name, err))
				break
			}
			if _, err := storage.Dispose(ctx, dest.Store, obj.Key); err != nil {
				rep.Errors = append(rep.Errors, fmt.Errorf("sweep %s: orphan payload %s: %w", dest.Name, obj.Key, err))
				continue
			}
			it := Item{Key: obj.Key, Age: now.Sub(obj.ModTime)}
			rep.Deleted = append(rep.Deleted, it)
			log.Info("deleted orphan payload", zap.String("key", it.Key), zap.Duration("age", it.Age))
		}
	}
	return rep, nil
}

// backupKey splits a key "<job>/<id>/<name>" of a Coffer backup folder into
// the folder ("<job>/<id>/"), the name and the backup id. Keys under
// layout.Reserved (Coffer's own objects: leases, drills, audit), which
// Sweep never touches, and keys of any other shape are not a backup's.
func backupKey(key string) (dir, name, id string, ok bool) {
	if strings.HasPrefix(key, layout.Reserved) {
		return "", "", "", false
	}
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", "", "", false
	}
	dir, name = key[:i+1], key[i+1:]
	job, id, ok := manifest.ParseKey(dir + manifest.FileName)
	if !ok || name == "" || dir != manifest.Dir(job, id) {
		return "", "", "", false
	}
	return dir, name, id, true
}

// old reports whether both t and the time in backup id are before cutoff:
// an item young by either measure may belong to a running backup.
func old(t time.Time, id string, cutoff time.Time) bool {
	started, err := manifest.IDTime(id)
	return err == nil && t.Before(cutoff) && started.Before(cutoff)
}
