package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// chromium returns the path of Debian's chromium, skipping the test on a
// machine without it, failing it in CI.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "the chromium command (Debian package chromium; scripts/services.sh installs it)")
	}
	return p
}

// runChromium runs headless chromium with args and returns its standard
// output.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-color-profile=srgb", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestHTMLInChromium renders the HTML report of a history with a missing
// week and a drill over the RTO in headless Chromium: the DOM holds every
// control's title and status, the screenshot shows both the pass and the
// fail colour, and printing gives A4 pages. The page itself loads
// nothing and runs no script.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	in := clean()
	dropEvents(&in.Jobs[0], backupID(sunday(2, 15)), "offsite")
	in.Jobs[0].Drills[2] = newDrill("app", time.Date(2026, 4, 1, 13, 0, 0, 0, time.UTC), 9*time.Hour+12*time.Minute, "passed")
	in.Jobs[0].Drills[1].Error = `<script>alert("x")</script>`
	r := Evaluate(in)
	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, bad := range []string{"<script", "<link", "src=", "url(", "@import", "https://", "<iframe"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page contains %q: it must be self-contained and script-free", bad)
		}
	}
	if n := strings.Count(html, "<svg"); n != 2 {
		t.Errorf("the page has %d inline SVG charts, want 2 (timeline, drills)", n)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file

	// One run of chromium does all three: dump the DOM, take a
	// screenshot and print to PDF.
	shot, pdf := filepath.Join(dir, "report.png"), filepath.Join(dir, "report.pdf")
	dom := string(runChromium(t, bin, "--window-size=1200,2000", "--dump-dom", "--screenshot="+shot,
		"--print-to-pdf="+pdf, "--no-pdf-header-footer", url))
	for _, c := range r.Jobs[0].Controls {
		row := regexp.MustCompile(`(?s)<tr class="control" id="control-app-` + c.ID + `"[^>]*>(.*?)</tr>`).FindStringSubmatch(dom)
		if row == nil {
			t.Errorf("the DOM has no row for control %s", c.ID)
			continue
		}
		badge := `<span class="badge ` + string(c.Status) + `">` + strings.ToUpper(string(c.Status)) + `</span>`
		if !strings.Contains(row[1], c.Title) || !strings.Contains(row[1], badge) {
			t.Errorf("control %s's row lacks its title %q or status %s:\n%s", c.ID, c.Title, badge, row[1])
		}
	}
	for _, want := range []string{"offsite: week 2026-W07 (from 2026-02-09) has no complete backup", "took 9h12m (33120 s), over the RTO 8h (28800 s)", "RTO 8h"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("an error text became a script element: values are not escaped")
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	counts := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for name, c := range map[string][3]uint32{"pass": {0x2e, 0x7d, 0x32}, "fail": {0xc6, 0x28, 0x28}} {
				if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
					counts[name]++
				}
			}
		}
	}
	// A timeline cell alone is about 50x35 pixels.
	if counts["pass"] < 1000 || counts["fail"] < 1000 {
		t.Errorf("screenshot %dx%d has %d pass-coloured and %d fail-coloured pixels, want at least 1000 of each",
			b.Dx(), b.Dy(), counts["pass"], counts["fail"])
	}

	data, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	// A4 is 595.28 x 841.89 points (Chromium rounds to whole pixels:
	// 594.96 x 841.92); US Letter would be 612 x 792.
	if !bytes.HasPrefix(data, []byte("%PDF-")) || !regexp.MustCompile(`/MediaBox\s*\[\s*0 0 59[45]\.\d+ 84[12]\.\d+\s*\]`).Match(data) {
		t.Errorf("printed PDF (%d bytes) has no A4 page", len(data))
	}
}

// near reports whether colour channels a and b are within 6 of each other.
func near(a, b uint32) bool { return a+6 >= b && b+6 >= a }
