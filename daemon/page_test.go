package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/keyfile"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/internal/monitor"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/report"
	"github.com/coffer-backup/coffer/storage/open"
	"github.com/coffer-backup/coffer/storage/s3"
)

// TestPageInChromium runs the daemon (Run, as `coffer run` does) on a
// PostgreSQL job backed up to the primary and offsite MinIO servers, with
// a token and an allow list. The daemon takes the job's first backup at
// start (a missed slot); a drill then runs through a Runner of its own,
// as `coffer drill` does, and a forged manifest is planted on offsite.
//
// Headless Chromium loads the page twice. Without a session it gets the
// login form and nothing of the jobs; a wrong token in the form is
// refused. Signed in, it reads the page: the
// test logs in with an HTTP POST /login (Chromium cannot submit a form
// without a script) and lets Chromium load the page through a reverse
// proxy that adds the session cookie to each request, so the daemon sees
// what a signed-in browser sends, while the browser's own handling of the
// cookie's flags is not exercised here (the Set-Cookie header is checked
// instead). The rendered DOM shows the job, the encryption control failed
// for the forged manifest, the key not used, the drill's duration, and
// the restore command; a screenshot at desktop and at phone width is
// saved in the test's artifact directory, and the desktop one also at
// /tmp/coffer-page.png (phone: /tmp/coffer-page-phone.png).
func TestPageInChromium(t *testing.T) {
	bin := testenv.Chromium(t)
	primarySrv, offsiteSrv := testenv.S3(t, "primary"), testenv.S3(t, "offsite")
	var primaryBucket, offsiteBucket string
	s3test.NewBucket(t, "primary", func(o *s3.Options) { primaryBucket = o.Bucket })
	offsiteStore := s3test.NewBucket(t, "offsite", func(o *s3.Options) { offsiteBucket = o.Bucket })
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 2_000)

	dir := t.TempDir()
	identity, signingKey := filepath.Join(dir, "identity.txt"), filepath.Join(dir, "signing.key")
	idFile, recipient, err := seal.GenerateIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pub, err := sign.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{identity: idFile, signingKey: keyFile} {
		if err := keyfile.Create(path, data); err != nil {
			t.Fatal(err)
		}
	}
	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	t.Setenv("COFFER_PAGE_TEST_TOKEN", token)
	t.Setenv("COFFER_PAGE_TEST_S3_SECRET", primarySrv.SecretKey)
	listen := freeAddr(t)
	bucket := func(name string, srv testenv.S3Server, b string) string {
		return fmt.Sprintf("  %s:\n    type: s3\n    endpoint: %q\n    region: %s\n    bucket: %s\n    path_style: true\n    insecure_http: true\n"+
			"    access_key_id: %s\n    secret_access_key: ${COFFER_PAGE_TEST_S3_SECRET}\n", name, srv.Endpoint, srv.Region, b, srv.AccessKey)
	}
	yaml := "recipients: [" + recipient + "]\nsigning:\n  key_file: " + signingKey + "\n  public_keys: [" + pub.String() + "]\n" +
		"destinations:\n" + bucket("primary", primarySrv, primaryBucket) + bucket("offsite", offsiteSrv, offsiteBucket) +
		"jobs:\n  shop:\n    source:\n" +
		fmt.Sprintf("      type: postgres\n      host: %q\n      port: %d\n      user: %s\n      database: %s\n", src.Host, src.Port, src.User, src.Database) +
		"    schedule: \"0 2 * * 0\"\n    drill:\n      identity_file: " + identity + "\n" +
		"daemon:\n  listen: " + listen + "\n  token: ${COFFER_PAGE_TEST_TOKEN}\n  allow: [127.0.0.0/8]\n  state_dir: " + filepath.Join(dir, "state") + "\n  shutdown_timeout: 10s\n"
	path := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	job := cfg.Jobs["shop"]

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Load: func() (*config.Config, error) { return config.Load(path) }, Version: "test", Log: zaptest.NewLogger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})

	// The daemon's catch-up backup, on both destinations.
	dests, err := open.JobDestinations(t.Context(), cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	var newest manifest.Backup
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := manifest.ReadCatalog(t.Context(), "shop", dests, manifest.ConfiguredTrust(cfg.Signing), nil)
		if b, ok := c.Newest(); ok && len(b.Destinations) == 2 {
			newest = b
			break
		}
		select {
		case err := <-done:
			t.Fatalf("daemon stopped before its first backup: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no backup on both destinations 90 s after the daemon started")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A drill, as coffer drill runs it, and a forged manifest on offsite.
	runner := &Runner{Log: zaptest.NewLogger(t), Metrics: metrics.New(), Holder: "test", DrillDir: filepath.Join(dir, "drills")}
	rep, err := runner.DrillNow(t.Context(), cfg, job, DrillRequest{})
	if err != nil || rep == nil || !rep.Passed() {
		t.Fatalf("drill: %+v, %v; want a pass", rep, err)
	}
	forged := "20260101T000000.000Z-dead"
	if _, err := offsiteStore.Put(t.Context(), manifest.Key("shop", forged), strings.NewReader(`{"format_version":2,"id":"`+forged+`","job":"shop"}`)); err != nil {
		t.Fatal(err)
	}

	base := "http://" + listen
	// Signed out, Chromium gets the login form only.
	dom := string(testenv.RunChromium(t, bin, "--dump-dom", base+"/"))
	if !strings.Contains(dom, `<form method="post" action="/login" id="login">`) || strings.Contains(dom, "shop") || strings.Contains(dom, newest.ID) {
		t.Fatalf("the page without a session shows more than the login form:\n%s", dom)
	}

	wrong, err := http.PostForm(base+"/login", url.Values{"token": {"not-" + token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(wrong.Body)
	wrong.Body.Close()
	if wrong.StatusCode != http.StatusUnauthorized || len(wrong.Cookies()) != 0 || !strings.Contains(string(body), "the token is not right") || strings.Contains(string(body), "shop") {
		t.Errorf("login with a wrong token: %d, cookies %v; want 401, no cookie, a generic message", wrong.StatusCode, wrong.Cookies())
	}
	session := pageLogin(t, base, token)
	// The proxy adds the session cookie to whatever Chromium asks for.
	target, _ := url.Parse(base)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header.Set("Cookie", monitor.SessionCookie+"="+session)
	}})
	t.Cleanup(proxy.Close)

	shots := t.ArtifactDir()
	desktop, phone := filepath.Join(shots, "coffer-page.png"), filepath.Join(shots, "coffer-page-phone.png")
	dom = string(testenv.RunChromium(t, bin, "--window-size=1280,3400", "--dump-dom", "--screenshot="+desktop, proxy.URL+"/?weeks=4"))
	testenv.RunChromium(t, bin, "--window-size=412,3000", "--screenshot="+phone, proxy.URL+"/?weeks=4")
	t.Logf("screenshots: %s and %s", desktop, phone)
	for src, dst := range map[string]string{desktop: "/tmp/coffer-page.png", phone: "/tmp/coffer-page-phone.png"} {
		if data, err := os.ReadFile(src); err != nil {
			t.Error(err)
		} else if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Logf("copy to %s: %v", dst, err)
		}
	}

	took := human.Seconds(rep.TotalSeconds)
	row := regexp.MustCompile(`(?s)<tr class="control" id="control-shop-encryption" data-status="(\w+)">(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil || row[1] != "fail" || !strings.Contains(row[2], `<span class="badge fail">FAIL</span>`) || !strings.Contains(row[2], forged) {
		t.Errorf("the encryption control of job shop is not shown failed for the forged manifest %s: %q", forged, row)
	}
	for _, want := range []string{
		`<article class="glance" id="glance-shop">`, "Job shop",
		`<tr class="dest" id="dest-shop-primary">`, `<tr class="dest" id="dest-shop-offsite">`, newest.ID,
		forged + ":", // offsite's key not used
		`<span class="took">` + took + `</span> of the RTO 8h`,
		"<td>" + took + "</td>", // the report's drill table
		"coffer restore --config " + path + " --job shop --id " + newest.ID + " --identity " + identity + " --target NEW_DATABASE",
		"Drill durations of job shop against the RTO", "Weekly backups of job shop per destination",
		"The same report as <code>coffer report --since 4w</code>",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, token) {
		t.Error("the rendered page has a script or shows the token")
	}
	// The downloads, through the same signed-in proxy.
	for path, want := range map[string]string{
		"/download/audit.csv?weeks=4":   "time,host,user,action,job,backup_id,destination,outcome,rule,detail\n",
		"/download/report.csv?weeks=4":  "shop,encryption,\"" + report.TitleEncryption + "\",fail,",
		"/download/report.json?weeks=4": `"passed": false`,
	} {
		resp, err := http.Get(proxy.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, body %.300q; want an attachment containing %q", path, resp.StatusCode, resp.Header.Get("Content-Disposition"), body, want)
		}
		if strings.HasPrefix(path, "/download/audit.csv") && !strings.Contains(string(body), ",backup,shop,"+newest.ID+",") {
			t.Errorf("the audit trail download lacks the backup of %s:\n%s", newest.ID, body)
		}
	}
	if pass, fail := colourPixels(t, desktop); pass < 500 || fail < 500 {
		t.Errorf("desktop screenshot has %d pass-coloured and %d fail-coloured pixels, want both shown", pass, fail)
	}
}

// pageLogin signs in with token at base and returns the session id,
// checking the cookie's flags.
func pageLogin(t *testing.T, base, token string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	raw := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Strict") || !strings.Contains(raw, "Path=/") {
		t.Fatalf("login: %d, Set-Cookie %q; want 303 and an HttpOnly, SameSite=Strict cookie for /", resp.StatusCode, raw)
	}
	for _, c := range resp.Cookies() {
		if c.Name == monitor.SessionCookie && c.Value != "" && !strings.Contains(c.Value, token) {
			return c.Value
		}
	}
	t.Fatalf("login: no session cookie in %q", raw)
	return ""
}

// colourPixels counts the pixels of the report's pass and fail colours in
// the PNG at path.
func colourPixels(t *testing.T, path string) (pass, fail int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	near := func(a, b uint32) bool { return a+6 >= b && b+6 >= a }
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case near(r, 0x2e) && near(g, 0x7d) && near(bl, 0x32):
				pass++
			case near(r, 0xc6) && near(g, 0x28) && near(bl, 0x28):
				fail++
			}
		}
	}
	return pass, fail
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
