// Package layout names every key Coffer writes or reads in a destination
// (relative to the destination's prefix). It is the one place the bucket
// layout is spelled out; every other package builds and parses keys with it.
//
//	<job>/<backup-id>/payload.<format>.zst.age      age(zstd(dump)); standard formats (the zstd stream is a
//	                                                sequence of independent 256 KiB frames, which every zstd decoder reads as one)
//	<job>/<backup-id>/manifest.json                 written last, create-only: its presence makes the backup exist
//	_coffer/audit/<host>/<time>-<random>.jsonl      audit trail shipped by each host (JSON lines, hash-chained)
//	_coffer/audit/<host>/<time>-<random>.head.json  its signed head (object SHA-256, chain head)
//	_coffer/drills/<job>/<drill-id>.json            restore-drill report (signed), create-only
//	_coffer/leases/<job>.json                       HA lease (holder, renewed, expires)
//	_coffer/leases/drills/<job>.json                HA lease of the job's scheduled drills
//	_coffer/probe/<random>                          conditional-write probe at HA start-up, deleted at once
//	_coffer/readyz                                  never written: /readyz reads it to see that the destination answers
//	_coffer/clock/                                  never written: listed to read the server's time
//
// With Object Lock (S3 lock_mode) backups and the audit trail are locked;
// the other objects under _coffer/ never are, because Coffer replaces or
// deletes them (see Mutable).
//
// Existing buckets must keep working: a change to any key here is a change
// of the stored format (layout_test.go pins every one). The package imports
// nothing of Coffer's; it checks shapes, not names or ids (manifest does).
package layout

import "strings"

// ManifestName is the manifest's object name inside a backup's folder.
const ManifestName = "manifest.json"

// payloadPrefix and payloadSuffix surround the dump format in a payload's
// object name.
const (
	payloadPrefix = "payload."
	payloadSuffix = ".zst.age"
)

// Reserved starts the keys of Coffer's own objects (audit trail, drill
// reports, leases, probes); no backup key does.
const Reserved = "_coffer/"

// AuditPrefix starts the keys of the shipped audit trail.
const AuditPrefix = Reserved + "audit/"

// AuditObjectSuffix ends a shipped audit object's key; AuditHeadSuffix
// replaces it in the key of the object's head.
const (
	AuditObjectSuffix = ".jsonl"
	AuditHeadSuffix   = ".head.json"
)

// Readyz is the key /readyz stats (never written): "not found" is an
// answer too, and shows that the destination is reachable.
const Readyz = Reserved + "readyz"

// ClockPrefix is listed to read the server's time; nothing is stored
// under it, so the listing is one small page.
const ClockPrefix = Reserved + "clock/"

// drillsPrefix, leasesPrefix and probePrefix start the keys of drill
// reports, leases and conditional-write probes.
const (
	drillsPrefix = Reserved + "drills/"
	leasesPrefix = Reserved + "leases/"
	probePrefix  = Reserved + "probe/"
)

// jsonSuffix ends the keys of drill reports and leases.
const jsonSuffix = ".json"

// Job is the prefix of every key of job's backups: "<job>/".
func Job(job string) string { return job + "/" }

// Backup is the folder (key prefix) of one backup: "<job>/<id>/".
func Backup(job, id string) string { return Job(job) + id + "/" }

// Manifest is a backup's manifest key: "<job>/<id>/manifest.json".
func Manifest(job, id string) string { return Backup(job, id) + ManifestName }

// ParseManifest splits a key of Manifest's shape into job and id; ok is
// false for any other key. It checks the shape only: whether job and id
// are valid names is manifest.ParseKey's question.
func ParseManifest(key string) (job, id string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] != ManifestName {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// PayloadName is the payload's object name for a dump format:
// "payload.<format>.zst.age".
func PayloadName(format string) string { return payloadPrefix + format + payloadSuffix }

// Payload is a backup's payload key in the given dump format, e.g.
// "app/20261123T020000.123Z-7f3a/payload.pg-custom.zst.age".
func Payload(job, id, format string) string { return Backup(job, id) + PayloadName(format) }

// IsPayloadName reports whether name is of PayloadName's shape, with a
// non-empty format.
func IsPayloadName(name string) bool {
	return len(name) > len(payloadPrefix)+len(payloadSuffix) &&
		strings.HasPrefix(name, payloadPrefix) && strings.HasSuffix(name, payloadSuffix)
}

// AuditObject is the key of a shipped audit object:
// "_coffer/audit/<host>/<name>.jsonl". host must be one key segment (no
// "/"); name is "<first-event-time>-<random>".
func AuditObject(host, name string) string {
	return AuditPrefix + host + "/" + name + AuditObjectSuffix
}

// AuditHead is the key of the head stored beside the audit object at
// object: ".jsonl" becomes ".head.json".
func AuditHead(object string) string {
	return strings.TrimSuffix(object, AuditObjectSuffix) + AuditHeadSuffix
}

// AuditHeadObject is AuditHead's inverse: the key of the audit object
// whose head is at head.
func AuditHeadObject(head string) string {
	return strings.TrimSuffix(head, AuditHeadSuffix) + AuditObjectSuffix
}

// AuditHost returns the host segment of an audit key (object or head);
// ok is false when nothing follows the host (no "/" after it).
func AuditHost(key string) (host string, ok bool) {
	host, _, ok = strings.Cut(strings.TrimPrefix(key, AuditPrefix), "/")
	return host, ok
}

// DrillReports is the prefix of job's drill reports: "_coffer/drills/<job>/".
func DrillReports(job string) string { return drillsPrefix + job + "/" }

// DrillReport is a drill report's key: "_coffer/drills/<job>/<drill-id>.json".
func DrillReport(job, id string) string { return DrillReports(job) + id + jsonSuffix }

// Lease is the key of job's backup lease: "_coffer/leases/<job>.json".
func Lease(job string) string { return leasesPrefix + job + jsonSuffix }

// DrillLease is the key of the lease a job's scheduled drills take in HA
// mode, apart from the backup lease so that a drill never holds up a
// backup: "_coffer/leases/drills/<job>.json".
func DrillLease(job string) string { return leasesPrefix + "drills/" + job + jsonSuffix }

// LeaseJob returns the job a lease key (Lease or DrillLease) names; ok is
// false for a key of neither shape.
func LeaseJob(key string) (job string, ok bool) {
	if j, ok := strings.CutPrefix(key, leasesPrefix); ok {
		if j, ok := strings.CutSuffix(j, jsonSuffix); ok && j != "" {
			return strings.TrimPrefix(j, "drills/"), true
		}
	}
	return "", false
}

// ConditionalProbe is the key of a conditional-write probe object:
// "_coffer/probe/<random>".
func ConditionalProbe(random string) string { return probePrefix + random }

// Mutable reports whether key is one of Coffer's own objects that it
// replaces or deletes in place (leases, drill reports, probes): everything
// under Reserved except the audit trail. Object Lock must not hold them;
// every other key (backups, the audit trail) is written once.
func Mutable(key string) bool {
	return strings.HasPrefix(key, Reserved) && !strings.HasPrefix(key, AuditPrefix)
}
