package repair_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"slices"
	"testing"

	"github.com/coffer-backup/coffer/internal/repair"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// kinds opens the two destinations of a test as local directories or as
// buckets on the two real MinIO servers.
var kinds = map[string]func(t *testing.T) (primary, offsite storage.Destination){
	"fs": func(t *testing.T) (storage.Destination, storage.Destination) {
		open := func(name string) storage.Destination {
			s, err := fs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return dest(name, s)
		}
		return open("primary"), open("offsite")
	},
	"minio": func(t *testing.T) (storage.Destination, storage.Destination) {
		return dest("primary", s3test.NewBucket(t, "primary")), dest("offsite", s3test.NewBucket(t, "offsite"))
	},
}

// TestPlantedKeyDoesNotStopRepair: a key planted on offsite under the id
// of a backup only the primary holds does not make offsite count as
// holding it. Repair deletes the planted object (it is not a backup) and
// copies the verified backup in its place. Before, repair listed keys,
// saw the planted one and copied nothing: the backup had one copy.
func TestPlantedKeyDoesNotStopRepair(t *testing.T) {
	for kind, open := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			primary, offsite := open(t)
			m := e.backup("300000", primary)
			planted := []byte(`{"format_version": 2, "manifest": {"id": "` + m.ID + `"}}`)
			if _, err := offsite.Store.Put(e.ctx, manifest.Key(job, m.ID), bytes.NewReader(planted)); err != nil {
				t.Fatal(err)
			}
			rep := e.repair(fast, primary, offsite)
			if len(rep.Copied) != 1 || rep.Copied[0].Action != repair.ActionReplace || rep.Copied[0].Reason == "" || len(rep.Failed) != 0 {
				t.Fatalf("report %+v, want the planted key replaced by a copy from primary, with the reason", rep)
			}
			e.requireRepaired(offsite, m, primary)
		})
	}
}

// TestHealManifestWithoutPayload: a verified manifest whose payload
// vanished from offsite is healed from the primary's whole copy. Before,
// the manifest alone made offsite count as holding the backup.
func TestHealManifestWithoutPayload(t *testing.T) {
	for kind, open := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			primary, offsite := open(t)
			m := e.backup("300000", primary, offsite)
			if err := offsite.Store.Delete(e.ctx, m.Payload.Key); err != nil {
				t.Fatal(err)
			}
			rep := e.repair(fast, primary, offsite)
			if len(rep.Copied) != 1 || rep.Copied[0].Action != repair.ActionHeal || len(rep.Failed) != 0 {
				t.Fatalf("report %+v, want offsite healed from primary", rep)
			}
			e.requireRepaired(offsite, m, primary)
		})
	}
}

// TestManifestWithoutPayloadAnywhereIsRemoved: a verified manifest whose
// payload no destination holds is not a backup: repair removes it and
// says so; but not while a destination that may hold the payload cannot
// be listed.
func TestManifestWithoutPayloadAnywhereIsRemoved(t *testing.T) {
	for kind, open := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			primary, offsite := open(t)
			keep := e.backup("300000", primary, offsite)
			lost := e.backup("300000", primary)
			if err := primary.Store.Delete(e.ctx, lost.Payload.Key); err != nil {
				t.Fatal(err)
			}

			down := dest("offsite", unlistable{offsite.Store})
			rep := e.repair(fast, primary, down)
			if len(rep.Removed) != 0 || !slices.Contains(e.keys(primary.Store), manifest.Key(job, lost.ID)) {
				t.Fatalf("report %+v: a manifest removed while offsite could not be listed (it may hold the payload)", rep)
			}

			rep = e.repair(fast, primary, offsite)
			if len(rep.Removed) != 1 || rep.Removed[0].ID != lost.ID || rep.Removed[0].Destination != "primary" || len(rep.Failed) != 0 {
				t.Fatalf("report %+v, want the manifest of %s removed from primary", rep, lost.ID)
			}
			if k := e.keys(primary.Store); slices.Contains(k, manifest.Key(job, lost.ID)) || !slices.Contains(k, manifest.Key(job, keep.ID)) {
				t.Fatalf("primary holds %v, want %s's manifest gone and %s kept", k, lost.ID, keep.ID)
			}
		})
	}
}

// TestDryRunPlansOnly: a dry run lists the steps and changes nothing.
func TestDryRunPlansOnly(t *testing.T) {
	e := newEnv(t)
	primary, offsite := kinds["fs"](t)
	m := e.backup("300000", primary)
	before := e.keys(offsite.Store)
	rep := e.repair(repair.Options{DryRun: true}, primary, offsite)
	if len(rep.Planned) != 1 || rep.Planned[0].ID != m.ID || rep.Planned[0].To != "offsite" || rep.Planned[0].Action != repair.ActionCopy || len(rep.Copied) != 0 {
		t.Fatalf("dry run report %+v, want one planned copy of %s to offsite", rep, m.ID)
	}
	if after := e.keys(offsite.Store); !slices.Equal(before, after) {
		t.Fatalf("dry run wrote to offsite: %v", after)
	}
}

// unlistable is a store that cannot be listed, as one behind a broken
// network path.
type unlistable struct{ storage.Store }

func (unlistable) List(context.Context, string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		yield(storage.ObjectInfo{}, errors.New("connection refused"))
	}
}
