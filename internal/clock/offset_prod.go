//go:build !soak

package clock

import "time"

// offset is always zero outside the soak build.
func offset() time.Duration { return 0 }
