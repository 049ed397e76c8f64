// Package clock is where Coffer's decisions read the current time: backup
// ids, retention ages, lease expiry. Production builds read the system
// clock and nothing else.
//
// The chaos soak (scripts/soak.sh) builds Coffer with the tag "soak",
// which adds an offset read from a file (see clock_soak.go), so that a
// clock jumping forward and back can be tested on a real daemon: Go reads
// time through the vDSO, so libfaketime cannot move it. Without the tag no
// offset code is compiled in.
package clock

import "time"

// Now returns the current time as Coffer's decisions must see it.
func Now() time.Time { return time.Now().Add(offset()) }

// Since is Now().Sub(t).
func Since(t time.Time) time.Duration { return Now().Sub(t) }
