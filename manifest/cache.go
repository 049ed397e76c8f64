package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/storage"
)

// Cache keeps manifest objects already read, in a directory of the
// daemon's state, keyed by destination, object key and ETag, so that the
// maintenance of many jobs does not fetch every manifest every hour. It
// holds bytes only: whatever it serves is decoded and verified again, so
// a damaged or edited cache costs a fetch, never trust. Objects without
// an ETag (local directories) are not cached. A nil *Cache caches nothing.
type Cache struct {
	dir string
}

// OpenCache opens (creating it, owner-only) the cache directory dir.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("manifest cache %s: %w", dir, err)
	}
	return &Cache{dir: dir}, nil
}

// path is the file holding obj of store, or "" when obj cannot be cached.
func (c *Cache) path(store string, obj storage.ObjectInfo) string {
	if c == nil || obj.ETag == "" {
		return ""
	}
	h := sha256.Sum256([]byte(store + "\x00" + obj.Key + "\x00" + obj.ETag))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16])+".json")
}

func (c *Cache) get(store string, obj storage.ObjectInfo) ([]byte, bool) {
	p := c.path(store, obj)
	if p == "" {
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil || int64(len(data)) != obj.Size {
		return nil, false
	}
	return data, true
}

// put stores data for obj; a failure only means a fetch next time.
func (c *Cache) put(store string, obj storage.ObjectInfo, data []byte) {
	if p := c.path(store, obj); p != "" && int64(len(data)) == obj.Size {
		_ = atomicfile.WriteFile(p, data)
	}
}
