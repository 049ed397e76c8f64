package snapshot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPgSideName: a staging or old database's name starts with the
// target's, fits PostgreSQL's 63 bytes, is valid UTF-8 and fresh each time.
func TestPgSideName(t *testing.T) {
	for _, target := range []string{"app", strings.Repeat("a", 63), strings.Repeat("é", 31) + "x"} {
		a, err := pgSideName(target, "restore")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pgSideName(target, "restore")
		if len(a) > pgMaxName || !utf8.ValidString(a) || !strings.Contains(a, "__coffer_restore_") || a == b {
			t.Errorf("pgSideName(%q) = %q (%d bytes), then %q", target, a, len(a), b)
		}
		if prefix := a[:strings.Index(a, "__coffer_")]; !strings.HasPrefix(target, prefix) || prefix == "" {
			t.Errorf("pgSideName(%q) = %q: not the target's name cut", target, a)
		}
	}
}
