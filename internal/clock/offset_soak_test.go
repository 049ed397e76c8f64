//go:build soak

package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSoakOffsetFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "offset")
	t.Setenv(OffsetFileEnv, f)
	if err := os.WriteFile(f, []byte("72h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(Now()); d < 71*time.Hour || d > 73*time.Hour {
		t.Fatalf("offset 72h: Now is %v ahead", d)
	}
	if err := os.WriteFile(f, []byte("-2h"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(Now()); d < time.Hour+59*time.Minute || d > 2*time.Hour+time.Minute {
		t.Fatalf("offset -2h: Now is %v behind", d)
	}
}
