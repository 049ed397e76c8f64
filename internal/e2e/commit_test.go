package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coffer-backup/coffer/internal/testenv"
)

// loseResponse is an HTTP proxy in front of a real S3 server that
// forwards everything, except that it drops the response to the first
// manifest PUT after the server has answered it: the server committed the
// manifest, the client sees its connection cut.
type loseResponse struct {
	url  string
	lost atomic.Int64
}

func newLoseResponse(t *testing.T, target string) *loseResponse {
	t.Helper()
	up, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &loseResponse{}
	rp := httputil.NewSingleHostReverseProxy(up) // keeps the client's Host: its SigV4 signature stays valid
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/manifest.json") || !p.lost.CompareAndSwap(0, 1) {
			rp.ServeHTTP(w, r)
			return
		}
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = up.Scheme, up.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		conn, _, herr := w.(http.Hijacker).Hijack()
		if herr == nil {
			conn.Close()
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.url = "http://" + l.Addr().String()
	return p
}

// TestLostManifestResponseIsCommitted: the offsite server commits a
// backup's manifest but its response is lost on the way back. The backup
// reads the manifest back, finds its own and reports both destinations
// ok; offsite holds manifest and payload, and list shows the backup on
// both. Before, the payload was deleted on any manifest-write error: the
// run was partial and offsite held a signed manifest without payload.
func TestLostManifestResponseIsCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	data := randomFile(t, 200_000)
	proxy := newLoseResponse(t, e.offsite.server.Endpoint)
	e.writeConfig("blob", execSource(data))
	writeFile(t, e.config, strings.Replace(readFile(t, e.config), e.offsite.server.Endpoint, proxy.url, 1))

	_, stderr, code := e.run("backup", "--job", "blob")
	if proxy.lost.Load() != 1 {
		t.Fatalf("the proxy dropped %d manifest responses, want 1", proxy.lost.Load())
	}
	if code != 0 {
		t.Fatalf("backup: exit %d, want 0 (the manifest was committed):\n%s", code, stderr)
	}
	keys := e.offsite.keys(t)
	hasPayload := slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "/payload.") })
	hasManifest := slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/manifest.json") })
	if !hasPayload || !hasManifest {
		t.Fatalf("offsite holds %v: want the manifest and its payload", keys)
	}
	b := listJSON(t, e)
	if len(b) != 1 || len(b[0].Destinations) != 2 {
		t.Fatalf("list %+v: want one backup on both destinations", b)
	}
}
