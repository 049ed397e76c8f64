package snapshot

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// dumpPipeSize is the pipe buffer asked for a dump tool's standard output:
// with 1 MiB instead of Linux's default 64 KiB the tool blocks, and Coffer
// wakes up, far less often per byte.
const dumpPipeSize = 1 << 20

// growPipe enlarges the pipe r reads from, when it is one; failure (an
// unprivileged process above /proc/sys/fs/pipe-max-size) leaves it as is.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if sc, err := f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) {
			_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, dumpPipeSize)
		})
	}
}
