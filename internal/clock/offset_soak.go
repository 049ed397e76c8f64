//go:build soak

package clock

import (
	"os"
	"strings"
	"time"
)

// OffsetFileEnv names the environment variable holding the path of the
// soak's clock-offset file: one Go duration ("72h", "-90m"), rewritten by
// the soak to jump the clock. A missing or malformed file means no offset.
const OffsetFileEnv = "COFFER_SOAK_CLOCK_FILE"

// offset reads the soak's offset file on every call, so that a jump takes
// effect at once in a running daemon.
func offset() time.Duration {
	path := os.Getenv(OffsetFileEnv)
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return d
}
