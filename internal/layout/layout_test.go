package layout_test

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/layout"
)

// TestKeys pins every key Coffer writes or reads. A failure here is a
// change of the stored format: buckets written by earlier versions must
// keep working, so change a key only on purpose, with a migration.
func TestKeys(t *testing.T) {
	const job, id = "app", "20261123T020000.123Z-7f3a"
	for _, c := range []struct{ got, want string }{
		{layout.ManifestName, "manifest.json"},
		{layout.Job(job), "app/"},
		{layout.Backup(job, id), "app/20261123T020000.123Z-7f3a/"},
		{layout.Manifest(job, id), "app/20261123T020000.123Z-7f3a/manifest.json"},
		{layout.PayloadName("pg-custom"), "payload.pg-custom.zst.age"},
		{layout.Payload(job, id, "pg-custom"), "app/20261123T020000.123Z-7f3a/payload.pg-custom.zst.age"},
		{layout.Reserved, "_coffer/"},
		{layout.AuditPrefix, "_coffer/audit/"},
		{layout.AuditObjectSuffix, ".jsonl"},
		{layout.AuditHeadSuffix, ".head.json"},
		{layout.AuditObject("db1", "20261123T020000.123Z-0a1b2c3d"), "_coffer/audit/db1/20261123T020000.123Z-0a1b2c3d.jsonl"},
		{layout.AuditHead("_coffer/audit/db1/20261123T020000.123Z-0a1b2c3d.jsonl"), "_coffer/audit/db1/20261123T020000.123Z-0a1b2c3d.head.json"},
		{layout.DrillReports(job), "_coffer/drills/app/"},
		{layout.DrillReport(job, id), "_coffer/drills/app/20261123T020000.123Z-7f3a.json"},
		{layout.Lease(job), "_coffer/leases/app.json"},
		{layout.DrillLease(job), "_coffer/leases/drills/app.json"},
		{layout.ConditionalProbe("0123456789abcdef"), "_coffer/probe/0123456789abcdef"},
		{layout.Readyz, "_coffer/readyz"},
		{layout.ClockPrefix, "_coffer/clock/"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

func TestParseManifest(t *testing.T) {
	const job, id = "app", "20261123T020000.123Z-7f3a"
	j, i, ok := layout.ParseManifest(layout.Manifest(job, id))
	if !ok || j != job || i != id {
		t.Fatalf("ParseManifest(Manifest(%q, %q)) = %q, %q, %v", job, id, j, i, ok)
	}
	for _, key := range []string{
		"", "manifest.json", "app/manifest.json", "/" + id + "/manifest.json", "app//manifest.json",
		"app/" + id + "/manifest.json/x", "x/app/" + id + "/manifest.json",
		layout.Payload(job, id, "pg-custom"), layout.Backup(job, id),
		layout.DrillReport(job, id), layout.Lease(job),
	} {
		if j, i, ok := layout.ParseManifest(key); ok || j != "" || i != "" {
			t.Errorf("ParseManifest(%q) = %q, %q, %v; want not a manifest key", key, j, i, ok)
		}
	}
}

func TestIsPayloadName(t *testing.T) {
	for _, format := range []string{"pg-custom", "sqlite", "x"} {
		if !layout.IsPayloadName(layout.PayloadName(format)) {
			t.Errorf("IsPayloadName(PayloadName(%q)) = false", format)
		}
	}
	for _, name := range []string{"", "payload..zst.age", "payload.zst.age", "manifest.json", "payload.pg-custom", "pg-custom.zst.age", "xpayload.a.zst.age"} {
		if layout.IsPayloadName(name) {
			t.Errorf("IsPayloadName(%q) = true", name)
		}
	}
}

func TestLeaseJob(t *testing.T) {
	for _, job := range []string{"app", "orders-db", "a_b"} {
		for _, key := range []string{layout.Lease(job), layout.DrillLease(job)} {
			if got, ok := layout.LeaseJob(key); !ok || got != job {
				t.Errorf("LeaseJob(%q) = %q, %v; want %q", key, got, ok, job)
			}
		}
	}
	for _, key := range []string{"", "_coffer/leases/.json", "_coffer/leases/app", "leases/app.json", "_coffer/drills/app/x.json", layout.Manifest("app", "x")} {
		if got, ok := layout.LeaseJob(key); ok || got != "" {
			t.Errorf("LeaseJob(%q) = %q, %v; want not a lease key", key, got, ok)
		}
	}
}

func TestAuditKeys(t *testing.T) {
	obj := layout.AuditObject("db1", "20261123T020000.123Z-0a1b2c3d")
	head := layout.AuditHead(obj)
	if got := layout.AuditHeadObject(head); got != obj {
		t.Errorf("AuditHeadObject(AuditHead(%q)) = %q", obj, got)
	}
	for _, key := range []string{obj, head} {
		if host, ok := layout.AuditHost(key); !ok || host != "db1" {
			t.Errorf("AuditHost(%q) = %q, %v; want db1", key, host, ok)
		}
	}
	if host, ok := layout.AuditHost(layout.AuditPrefix + "stray.jsonl"); ok {
		t.Errorf("AuditHost of a key without a host folder = %q, true", host)
	}
}

func TestMutable(t *testing.T) {
	const job, id = "app", "20261123T020000.123Z-7f3a"
	for _, c := range []struct {
		key  string
		want bool
	}{
		{layout.Lease(job), true},
		{layout.DrillLease(job), true},
		{layout.DrillReport(job, id), true},
		{layout.ConditionalProbe("00"), true},
		{layout.Readyz, true},
		{layout.Manifest(job, id), false},
		{layout.Payload(job, id, "pg-custom"), false},
		{layout.AuditObject("db1", "t-r"), false},
		{layout.AuditHead(layout.AuditObject("db1", "t-r")), false},
		{"other/key", false},
	} {
		if got := layout.Mutable(c.key); got != c.want {
			t.Errorf("Mutable(%q) = %v, want %v", c.key, got, c.want)
		}
	}
}
