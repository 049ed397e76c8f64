package monitor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Browser sessions: a login with the token gives a random session id in
// a cookie; the id, not the token, authorizes later requests until it
// expires or the browser logs out. Sessions live in memory: a restart of
// the daemon logs every browser out.
const (
	// SessionCookie is the name of the session cookie.
	SessionCookie = "coffer_session"
	// SessionTTL is how long a session lasts after login.
	SessionTTL = 12 * time.Hour
	// maxSessions bounds the memory sessions take: when it is reached,
	// expired sessions are dropped, then the oldest.
	maxSessions = 1024
)

// sessions holds the live session ids by their SHA-256, so that a map
// lookup's timing depends on the hash, not on the secret id.
type sessions struct {
	mu   sync.Mutex
	ids  map[[sha256.Size]byte]time.Time // -> expiry
	now  func() time.Time
	ttl  time.Duration
	size int
}

func newSessions(now func() time.Time) *sessions {
	if now == nil {
		now = time.Now
	}
	return &sessions{ids: map[[sha256.Size]byte]time.Time{}, now: now, ttl: SessionTTL, size: maxSessions}
}

// create returns a new session id (32 random bytes, base64url) and its
// expiry.
func (s *sessions) create() (string, time.Time) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.ids) >= s.size {
		s.dropExpired(now)
	}
	for len(s.ids) >= s.size {
		var oldest [sha256.Size]byte
		first := true
		for k, exp := range s.ids {
			if first || exp.Before(s.ids[oldest]) {
				oldest, first = k, false
			}
		}
		delete(s.ids, oldest)
	}
	exp := now.Add(s.ttl)
	s.ids[sha256.Sum256([]byte(id))] = exp
	return id, exp
}

func (s *sessions) dropExpired(now time.Time) {
	for k, exp := range s.ids {
		if !now.Before(exp) {
			delete(s.ids, k)
		}
	}
}

// valid reports whether r carries the cookie of a live session.
func (s *sessions) valid(r *http.Request) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	k := sha256.Sum256([]byte(c.Value))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.ids[k]
	if ok && !s.now().Before(exp) {
		delete(s.ids, k)
		return false
	}
	return ok
}

// end forgets r's session, if any.
func (s *sessions) end(r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.ids, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
}

// cookie returns the session cookie for id: HttpOnly, SameSite=Strict,
// Path=/, expiring at exp (maxAge seconds from now), and Secure when the request came
// over TLS, or through a proxy that says so (X-Forwarded-Proto: https;
// trusting that header can only make the cookie stricter). An empty id
// deletes the cookie.
func cookie(r *http.Request, id string, exp time.Time, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
	}
	if id == "" {
		c.MaxAge = -1
	} else {
		c.Expires = exp.UTC()
		c.MaxAge = maxAge
	}
	return c
}
