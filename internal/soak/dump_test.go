//go:build soak

package soak

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The job's source is this test binary run as an exec command (TestMain
// sees dumpDirEnv): each run takes the next generation number from a
// counter file and writes a deterministic dump for (seed, generation),
// whose first line names both, then appends "generation sha256 size" to
// dumps.log. The oracle reads a restored dump's first line and checks its
// SHA-256 against that log: a restored backup must equal the dump it was
// made from, byte for byte.
const dumpDirEnv = "COFFER_SOAK_DUMP_DIR"

// dumpHeader starts every dump.
const dumpHeader = "coffer-soak-dump seed=%d gen=%d size=%d\n"

// dumpSize is the size of dump gen: most are small (one PUT), about a
// third are larger than the 8 MiB S3 part size (multipart uploads, so
// that resets mid-part and kill -9 leave unfinished uploads to sweep).
func dumpSize(seed uint64, gen int) int64 {
	r := rand.New(rand.NewPCG(seed, uint64(gen)^0x5ca1ab1e))
	if r.IntN(3) == 0 {
		return 9<<20 + r.Int64N(5<<20)
	}
	return 200<<10 + r.Int64N(3<<20)
}

// writeDump writes dump gen of seed to w and returns its SHA-256 and size.
func writeDump(w io.Writer, seed uint64, gen int) (string, int64, error) {
	size := dumpSize(seed, gen)
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
	head := fmt.Sprintf(dumpHeader, seed, gen, size)
	if _, err := io.WriteString(bw, head); err != nil {
		return "", 0, err
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(gen))
	src := rand.NewChaCha8(key)
	buf := make([]byte, 64<<10)
	for left := size - int64(len(head)); left > 0; {
		n := min(int64(len(buf)), left)
		src.Read(buf[:n])
		if _, err := bw.Write(buf[:n]); err != nil {
			return "", 0, err
		}
		left -= n
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// runDumpHelper is the exec source: it runs instead of the tests when
// dumpDirEnv is set, and returns the process exit code.
func runDumpHelper(dir string) int {
	seed, err := strconv.ParseUint(strings.TrimSpace(readString(filepath.Join(dir, "seed"))), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak dump: seed:", err)
		return 1
	}
	gen, err := nextGeneration(filepath.Join(dir, "gen"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak dump:", err)
		return 1
	}
	sum, size, err := writeDump(os.Stdout, seed, gen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak dump: write:", err)
		return 1
	}
	f, err := os.OpenFile(filepath.Join(dir, "dumps.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak dump:", err)
		return 1
	}
	defer f.Close()
	fmt.Fprintf(f, "%d %s %d\n", gen, sum, size)
	return 0
}

// nextGeneration increments the counter in path under an exclusive lock
// and returns the new value.
func nextGeneration(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(f)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	if _, err := f.WriteAt([]byte(strconv.Itoa(n)+"\n"), 0); err != nil {
		return 0, err
	}
	return n, nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// dumpRecord is one line of dumps.log.
type dumpRecord struct {
	SHA256 string
	Size   int64
}

// readDumps reads dumps.log: generation -> record.
func readDumps(dir string) map[int]dumpRecord {
	out := map[int]dumpRecord{}
	for _, line := range strings.Split(readString(filepath.Join(dir, "dumps.log")), "\n") {
		var gen int
		var r dumpRecord
		if n, _ := fmt.Sscanf(line, "%d %s %d", &gen, &r.SHA256, &r.Size); n == 3 {
			out[gen] = r
		}
	}
	return out
}

// dumpIdentity reads the header of a restored dump.
func dumpIdentity(path string) (seed uint64, gen int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("restored dump has no header line: %w", err)
	}
	var size int64
	if _, err := fmt.Sscanf(line, dumpHeader, &seed, &gen, &size); err != nil {
		return 0, 0, fmt.Errorf("restored dump header %q: %w", strings.TrimSpace(line), err)
	}
	return seed, gen, nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
