package snapshot

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// dumpPipeSize is the pipe buffer asked for a dump tool's standard output:
// with 1 MiB instead of Linux's default 64 KiB the tool blocks, and Coffer
// wakes up, far less often per byte.
const dumpPipeSize = 1 << 20

// Read pacing. Dump tools write their output a few KiB at a time (pg_dump
// through a 4 KiB stdio buffer), and a reader that is faster than the tool
// wakes up for nearly every write: on a 400 MB dump, ~50,000 reads, each a
// wake-up of this process and of the tool. Once a read comes back short
// (the pipe was nearly drained), waiting readPause lets the pipe fill up
// for the next one; the tool never blocks meanwhile unless it writes
// faster than dumpPipeSize per readPause (1 GB/s), and then reads are not
// short. Measured: 8,100 reads instead of 48,600 on a 390 MiB dump.
const (
	shortRead = 64 << 10
	readPause = time.Millisecond
)

// dumpReader returns what to read a dump tool's standard output r from:
// r's pipe grown to dumpPipeSize and read paced, or r as it is when the
// pipe cannot grow (a pause would then fill it and stall the tool).
func dumpReader(r io.Reader) io.Reader {
	if !growPipe(r) {
		return r
	}
	return &pacedReader{r: r, sleep: time.Sleep}
}

// pacedReader waits readPause before a read that follows a short one.
type pacedReader struct {
	r     io.Reader
	short bool // the last read was short
	sleep func(time.Duration)
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.short {
		p.sleep(readPause)
	}
	n, err := p.r.Read(b)
	p.short = n < shortRead
	return n, err
}

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
