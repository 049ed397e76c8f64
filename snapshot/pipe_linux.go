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

// growPipe enlarges the pipe r reads from, when it is one, and reports
// whether it now holds dumpPipeSize bytes; failure (an unprivileged
// process above /proc/sys/fs/pipe-max-size) leaves it as is.
func growPipe(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	size := 0
	_ = sc.Control(func(fd uintptr) {
		size, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, dumpPipeSize)
	})
	return size >= dumpPipeSize
}
