package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/layout"
)

// Fault is what the proxy does to one request.
type Fault string

// The faults. Pass forwards the request and its answer unchanged.
const (
	Pass        Fault = "pass"
	Drop        Fault = "drop"      // forwarded and answered upstream; the client connection is reset without the answer
	ServerError Fault = "5xx"       // 503 SlowDown, not forwarded
	Reset       Fault = "reset"     // body forwarded up to Rule.ResetAfter bytes, then both connections reset
	Blackhole   Fault = "blackhole" // accepted, never answered; reset when the black hole ends
)

// Class is the kind of S3 request, as far as faults care.
type Class string

// The request classes Classify returns. In a Rule, the empty Class
// matches every request.
const (
	ClassManifestPut  Class = "manifest-put"  // PUT .../manifest.json
	ClassPayloadPut   Class = "payload-put"   // single PUT of .../payload.<format>.zst.age
	ClassPart         Class = "part"          // UploadPart (PUT ?partNumber&uploadId)
	ClassCreateUpload Class = "create-upload" // CreateMultipartUpload (POST ?uploads)
	ClassComplete     Class = "complete"      // CompleteMultipartUpload (POST ?uploadId)
	ClassAbort        Class = "abort"         // AbortMultipartUpload (DELETE ?uploadId)
	ClassPut          Class = "put"           // any other PUT (audit trail, lease, copies)
	ClassList         Class = "list"          // bucket-level GET (ListObjects, ListMultipartUploads)
	ClassGet          Class = "get"           // GetObject
	ClassHead         Class = "head"          // HeadObject, HeadBucket
	ClassDelete       Class = "delete"        // DeleteObject, DeleteObjects
	ClassOther        Class = "other"
)

// Classify names the kind of a path-style S3 request (/bucket/key?query).
func Classify(r *http.Request) Class {
	q := r.URL.Query()
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch r.Method {
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && q.Has("uploadId"):
			return ClassPart
		case strings.HasSuffix(key, "/"+layout.ManifestName):
			return ClassManifestPut
		case layout.IsPayloadName(path.Base(key)):
			return ClassPayloadPut
		}
		return ClassPut
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return ClassCreateUpload
		case q.Has("uploadId"):
			return ClassComplete
		case q.Has("delete"):
			return ClassDelete
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return ClassAbort
		}
		return ClassDelete
	case http.MethodGet:
		if key == "" {
			return ClassList
		}
		return ClassGet
	case http.MethodHead:
		return ClassHead
	}
	return ClassOther
}

// Rule injects Fault into requests of Class (empty: every class): into
// the Nth such request since SetRules (1-based) when Nth > 0, otherwise
// into each with probability Prob, drawn from the proxy's seeded
// generator. The first rule that fires wins.
type Rule struct {
	Class Class
	Nth   int
	Prob  float64
	Fault Fault
	// ResetAfter is how many request body bytes a Reset forwards first;
	// 0 means half the body (at least one byte). A request with no body is
	// reset before it is forwarded.
	ResetAfter int64
}

func (r Rule) String() string {
	c := string(r.Class)
	if c == "" {
		c = "any"
	}
	if r.Nth > 0 {
		return fmt.Sprintf("%s #%d: %s", c, r.Nth, r.Fault)
	}
	return fmt.Sprintf("%s p=%.2f: %s", c, r.Prob, r.Fault)
}

// Injection is one fault the proxy injected.
type Injection struct {
	Seq    int // request number since SetRules, 1-based
	Class  Class
	Method string
	Path   string
	Fault  Fault
}

// Proxy forwards HTTP requests to one S3 server, injecting faults.
type Proxy struct {
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport

	mu       sync.Mutex
	rules    []Rule
	rng      *rand.Rand
	seq      int
	counts   map[Class]int
	injected []Injection
	hole     bool
	release  chan struct{} // closed when held requests must end (rules change, black hole ends, Close)
	body     map[Class]int64
	active   map[Class]int
	closed   bool
}

// New starts a proxy on a free loopback port in front of target (an
// http:// endpoint such as http://127.0.0.1:9100), passing everything
// through until SetRules or SetBlackhole say otherwise.
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("chaos proxy: target %q: want http://host:port", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos proxy: listen: %w", err)
	}
	p := &Proxy{
		target: u, ln: ln,
		tr: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 32,
			DisableCompression:  true,
		},
		rng:     rand.New(rand.NewPCG(0, 0)),
		counts:  map[Class]int{},
		release: make(chan struct{}),
		body:    map[Class]int64{},
		active:  map[Class]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the proxy's endpoint, for a destination's endpoint setting.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.release)
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.tr.CloseIdleConnections()
	return err
}

// SetRules replaces the rules, reseeds the generator with seed and
// restarts the request counts that Rule.Nth refers to. Requests held by
// a Blackhole rule are reset.
func (p *Proxy) SetRules(seed uint64, rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append([]Rule(nil), rules...)
	p.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p.seq = 0
	p.counts = map[Class]int{}
	p.releaseHeld()
}

// SetBlackhole turns the black hole on (every new request is accepted and
// never answered) or off (requests held are reset, new ones go through
// the rules again).
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hole && !on {
		p.releaseHeld()
	}
	p.hole = on
}

// releaseHeld ends every held request. p.mu is held.
func (p *Proxy) releaseHeld() {
	if p.closed {
		return
	}
	close(p.release)
	p.release = make(chan struct{})
}

// Injected returns the faults injected since the proxy started, in order
// (Pass is not recorded).
func (p *Proxy) Injected() []Injection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Injection(nil), p.injected...)
}

// BodyBytes returns how many request body bytes of class have been
// forwarded upstream since the proxy started.
func (p *Proxy) BodyBytes(class Class) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.body[class]
}

// Active returns how many requests of class are in flight.
func (p *Proxy) Active(class Class) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active[class]
}

// decide picks the fault for a request of class.
func (p *Proxy) decide(r *http.Request, class Class) (Fault, Rule, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.counts[class]++
	p.active[class]++
	fault, rule := Pass, Rule{}
	if p.hole {
		fault = Blackhole
	} else {
		for _, ru := range p.rules {
			if ru.Class != "" && ru.Class != class {
				continue
			}
			n := p.seq
			if ru.Class != "" {
				n = p.counts[class]
			}
			hit := false
			if ru.Nth > 0 {
				hit = n == ru.Nth
			} else if ru.Prob > 0 {
				hit = p.rng.Float64() < ru.Prob // drawn for every matching request, hit or not
			}
			if hit {
				fault, rule = ru.Fault, ru
				break
			}
		}
	}
	if fault != Pass {
		p.injected = append(p.injected, Injection{Seq: p.seq, Class: class, Method: r.Method, Path: r.URL.Path, Fault: fault})
	}
	return fault, rule, p.release
}

func (p *Proxy) done(class Class) {
	p.mu.Lock()
	p.active[class]--
	p.mu.Unlock()
}

func (p *Proxy) addBody(class Class, n int) {
	p.mu.Lock()
	p.body[class] += int64(n)
	p.mu.Unlock()
}

// ServeHTTP forwards one request, or injects its fault.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	class := Classify(r)
	fault, rule, release := p.decide(r, class)
	defer p.done(class)
	switch fault {
	case Blackhole:
		select {
		case <-release:
		case <-r.Context().Done():
		}
		resetClient(w)
	case ServerError:
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>chaos: injected 503</Message></Error>`)
	default:
		p.forward(w, r, class, fault, rule)
	}
}

// errReset ends a request body forwarded up to a Reset's offset.
var errReset = errors.New("chaos: connection reset mid-body")

// forward sends r upstream; for Drop it resets the client instead of
// answering, and for Reset it cuts the body at rule.ResetAfter.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, class Class, fault Fault, rule Rule) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host // SigV4 signs the Host the client used
	stripHop(out.Header)
	out.Header.Del("Expect") // the 100-continue was answered on the client side
	limit := int64(-1)
	if fault == Reset {
		limit = rule.ResetAfter
		if limit <= 0 {
			limit = max(r.ContentLength/2, 1)
		}
		if r.ContentLength <= 0 {
			resetClient(w)
			return
		}
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		out.Body = &countingBody{r: r.Body, limit: limit, add: func(n int) { p.addBody(class, n) }}
	}
	resp, err := p.tr.RoundTrip(out)
	if fault == Reset || fault == Drop {
		if err == nil {
			io.Copy(io.Discard, resp.Body) // let the server finish: it has committed
			resp.Body.Close()
		}
		resetClient(w)
		return
	}
	if err != nil {
		http.Error(w, "chaos proxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	stripHop(resp.Header)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// resetClient aborts the client's connection with a TCP RST, without an
// answer.
func resetClient(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// hopHeaders are the hop-by-hop headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func stripHop(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// countingBody counts the bytes read from r and fails with errReset once
// limit (when not negative) bytes have been read.
type countingBody struct {
	r     io.ReadCloser
	limit int64
	read  int64
	add   func(int)
}

func (b *countingBody) Read(q []byte) (int, error) {
	if b.limit >= 0 {
		left := b.limit - b.read
		if left <= 0 {
			return 0, errReset
		}
		if int64(len(q)) > left {
			q = q[:left]
		}
	}
	n, err := b.r.Read(q)
	b.read += int64(n)
	if n > 0 {
		b.add(n)
	}
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }
