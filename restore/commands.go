package restore

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/manifest"
)

// Commands returns the commands a person runs to restore m, a backup of
// job j, into a new database: with Coffer (`coffer restore` with the
// configuration's absolute path, the job, the backup id, the job's
// drill.identity_file or a placeholder, and a target placeholder), and
// with the stock tools (fetch, age -d, zstd -d, the database's loader)
// from the first of the job's destinations that present lists; the second
// is "" when present names none of them. Neither holds a secret: the
// identity is a file path and S3 credentials come from the environment.
func Commands(cfg *config.Config, j *config.Job, present []string, m *manifest.Manifest) (coffer, stockTools string) {
	cfgPath, _ := filepath.Abs(cfg.Path)
	identity := j.Drill.IdentityFile
	if identity == "" {
		identity = "/path/to/identity.txt"
	}
	target := "NEW_DATABASE"
	load := "| pg_restore -d NEW_DATABASE"
	switch m.Source.Format {
	case "pg-plain":
		load = "| psql -d NEW_DATABASE"
	case "sql":
		load = "| mariadb NEW_DATABASE"
	case "sqlite":
		target, load = "/path/to/restored.sqlite", "> /path/to/restored.sqlite"
	}
	coffer = fmt.Sprintf("coffer restore --config %s --job %s --id %s --identity %s --target %s", cfgPath, j.Name, m.ID, identity, target)
	if m.Source.Kind == "exec" {
		coffer = fmt.Sprintf("coffer restore --config %s --job %s --id %s --identity %s -o dump.%s", cfgPath, j.Name, m.ID, identity, m.Source.Format)
		load = "> dump." + m.Source.Format
	}
	i := slices.IndexFunc(j.Destinations, func(n string) bool { return slices.Contains(present, n) })
	if i < 0 {
		return coffer, ""
	}
	d := cfg.Destinations[j.Destinations[i]]
	key := m.Payload.Key
	if d.Prefix != "" {
		key = d.Prefix + "/" + key
	}
	fetch := "cat " + filepath.Join(d.Path, key)
	if d.Type == "s3" {
		endpoint := ""
		if d.Endpoint != "" {
			endpoint = " --endpoint-url " + d.Endpoint
		}
		fetch = fmt.Sprintf("aws s3 cp%s s3://%s/%s -", endpoint, d.Bucket, key)
	}
	return coffer, fmt.Sprintf("%s | age -d -i %s | zstd -d %s", fetch, identity, load)
}
