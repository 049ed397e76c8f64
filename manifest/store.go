package manifest

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// Write stores m, signed by signer, as the manifest of its backup on s,
// create-only: an existing manifest is never replaced.
func Write(ctx context.Context, s storage.Store, m *Manifest, signer *sign.Signer) error {
	data, err := m.Sign(signer)
	if err != nil {
		return err
	}
	return create(ctx, s, Key(m.Job, m.ID), data)
}

// WriteCopy stores the manifest object m was read from, byte for byte, on
// s, create-only: a backup copied to another destination keeps the
// signature of the backup side. m must come from Read or Decode.
func WriteCopy(ctx context.Context, s storage.Store, m *Manifest) error {
	if m.stored == nil {
		return fmt.Errorf("manifest %s/%s: not read from a store; nothing to copy", m.Job, m.ID)
	}
	return create(ctx, s, Key(m.Job, m.ID), m.stored)
}

// create writes data to key on s unless key exists.
func create(ctx context.Context, s storage.Store, key string, data []byte) error {
	if _, err := storage.Create(ctx, s, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("write manifest %s to %s: %w", key, s, err)
	}
	return nil
}

// Read fetches the manifest of backup id of job from s (destination names
// s in messages), checks its signature as trust says, decodes it and
// checks that it describes that backup. A signature that fails is a
// *SignatureError naming the object and the destination, e.g.
// "app/<id>/manifest.json on offsite: signature: bad signature by key
// 3f9a1c2b: ...".
//
// A manifest's copies name the destinations that committed the backup
// when it was taken; a repaired copy is the same object, so the
// destination read from need not be among them.
func Read(ctx context.Context, s storage.Store, destination, job, id string, trust Trust) (*Manifest, error) {
	key := Key(job, id)
	data, err := fetch(ctx, storage.Destination{Name: destination, Store: s}, key)
	if err != nil {
		return nil, err
	}
	return decodeFor(data, trust, key+" on "+destination, job, id)
}

// IDs lists the ids of job's backups that have a manifest key on s,
// oldest first, trusting nothing else: only purge, which removes
// everything of a job, should use it; decisions read ReadCatalog. A
// payload without a manifest is not a backup and is not listed.
func IDs(ctx context.Context, s storage.Store, job string) ([]string, error) {
	var ids []string
	for obj, err := range s.List(ctx, layout.Job(job)) {
		if err != nil {
			return nil, fmt.Errorf("list %s on %s: %w", job, s, err)
		}
		if j, id, ok := ParseKey(obj.Key); ok && j == job {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}
