package manifest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/coffer-backup/coffer/storage"
)

// Write stores m as the manifest of its backup on s, create-only: an
// existing manifest is never replaced.
func Write(ctx context.Context, s storage.Store, m *Manifest) error {
	data, err := m.Encode()
	if err != nil {
		return err
	}
	key := Key(m.Job, m.ID)
	if _, err := storage.Create(ctx, s, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("write manifest %s to %s: %w", key, s, err)
	}
	return nil
}

// Read fetches and decodes the manifest of backup id of job from s, and
// checks that it describes that backup and lists s's destination name
// among its copies.
func Read(ctx context.Context, s storage.Store, destination, job, id string) (*Manifest, error) {
	key := Key(job, id)
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s from %s: %w", key, destination, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s from %s: %w", key, destination, err)
	}
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", key, destination, err)
	}
	if m.Job != job || m.ID != id {
		return nil, fmt.Errorf("%s on %s: describes backup %s/%s, not %s/%s", key, destination, m.Job, m.ID, job, id)
	}
	if _, ok := m.Copy(destination); !ok {
		return nil, fmt.Errorf("%s on %s: does not list %s among its copies", key, destination, destination)
	}
	return m, nil
}

// IDs lists the ids of job's backups that have a manifest on s, oldest
// first. A payload without a manifest is not a backup and is not listed.
func IDs(ctx context.Context, s storage.Store, job string) ([]string, error) {
	var ids []string
	for obj, err := range s.List(ctx, job+"/") {
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
