//go:build !linux

package snapshot

import "io"

// dumpReader returns r: the pipe is neither grown nor read paced outside
// Linux.
func dumpReader(r io.Reader) io.Reader { return r }
