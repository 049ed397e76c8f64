package snapshot

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !growPipe(r) {
		t.Fatal("growPipe reported failure")
	}
	sc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if err := sc.Control(func(fd uintptr) { size, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if size < dumpPipeSize {
		t.Fatalf("pipe buffer is %d bytes after growPipe, want %d", size, dumpPipeSize)
	}
	if growPipe(nil) {
		t.Fatal("growPipe(nil) reported a grown pipe")
	}
}
