package report

import (
	"fmt"
	"slices"
	"strings"
)

// fingerprint shortens an age public key for people: its first 12 and
// last 6 characters. Keys of 21 characters or fewer are returned whole.
func fingerprint(key string) string {
	if len(key) <= 21 {
		return key
	}
	return key[:12] + "..." + key[len(key)-6:]
}

// recipients describes keys, in their order.
func recipients(keys []string) []Recipient {
	out := []Recipient{}
	for _, k := range keys {
		out = append(out, Recipient{Fingerprint: fingerprint(k), Key: k})
	}
	return out
}

// fingerprints lists keys' fingerprints, comma-separated.
func fingerprints(keys []string) string {
	var fps []string
	for _, k := range keys {
		fps = append(fps, fingerprint(k))
	}
	return strings.Join(fps, ", ")
}

// encryptionControl evaluates the encryption control: every backup present
// has a manifest that checks out and is encrypted to the configured
// recipients. Extra or missing recipients (a key rotation in progress)
// warn; a backup encrypted to none of them fails.
func (e *jobEval) encryptionControl() Control {
	c := Control{ID: ControlEncryption, Title: TitleEncryption, Status: Pass}
	configured := e.in.Job.Recipients
	if len(configured) == 0 {
		c.add(Fail, "job %s has no recipients configured", e.in.Job.Name)
	} else {
		c.add(Pass, "configured recipients: %s", fingerprints(configured))
	}
	checked, bad, foreign, rotating, unverified := 0, 0, 0, 0, 0
	for _, d := range e.in.Destinations {
		if d.Err != nil {
			c.add(Fail, "%s: could not be read: %v", d.Name, d.Err)
			continue
		}
		for _, b := range d.Bad {
			bad++
			c.add(Fail, "%s: backup %s: manifest does not check out: %v", d.Name, b.ID, b.Err)
		}
		for _, b := range d.Unverified {
			unverified++
			c.add(Warn, "%s: backup %s: signature not verified: %v", d.Name, b.ID, b.Err)
		}
		for _, m := range d.Manifests {
			checked++
			have := m.Encryption.Recipients
			var extra, absent []string
			for _, r := range have {
				if !slices.Contains(configured, r) {
					extra = append(extra, r)
				}
			}
			for _, r := range configured {
				if !slices.Contains(have, r) {
					absent = append(absent, r)
				}
			}
			switch {
			case len(extra) == len(have):
				foreign++
				c.add(Fail, "%s: backup %s is encrypted to none of the configured recipients (it is encrypted to %s, with %s)",
					d.Name, m.ID, fingerprints(have), m.Encryption.Algorithm)
			case len(extra) > 0 || len(absent) > 0:
				rotating++
				var why []string
				if len(extra) > 0 {
					why = append(why, "also to "+fingerprints(extra)+", not configured")
				}
				if len(absent) > 0 {
					why = append(why, "not to configured "+fingerprints(absent))
				}
				c.add(Warn, "%s: backup %s is encrypted %s: a key rotation in progress?", d.Name, m.ID, strings.Join(why, "; "))
			}
		}
	}
	switch {
	case bad > 0 || foreign > 0:
		c.Summary = fmt.Sprintf("%s with a manifest that does not check out, %s not encrypted to any configured recipient",
			plural(bad, "backup"), plural(foreign, "backup"))
	case c.Status == Fail:
		c.Summary = "encryption cannot be confirmed"
	case rotating > 0 || unverified > 0:
		c.Summary = fmt.Sprintf("%s checked; %s encrypted to other recipients than configured, %s with an unverified signature",
			plural(checked, "backup copy"), plural(rotating, "copy"), plural(unverified, "copy"))
	case checked == 0:
		c.Summary = "no backups present to check"
	default:
		c.Summary = fmt.Sprintf("%s checked: manifests valid, each encrypted with age to exactly the configured recipients", plural(checked, "backup copy"))
	}
	return c
}
