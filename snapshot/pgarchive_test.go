package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// archive builds pg_dump custom-format archives for the parser's tests,
// following pg_backup_archiver.c's WriteHead, WriteToc and pg_backup_custom.c's
// data blocks.
type archive struct {
	bytes.Buffer
	minor   byte
	intSize int
}

func (a *archive) int(v int64) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	a.WriteByte(sign)
	for i := range a.intSize {
		a.WriteByte(byte(v >> (8 * i)))
	}
}

func (a *archive) str(s string) {
	a.int(int64(len(s)))
	a.WriteString(s)
}

func (a *archive) null() { a.int(-1) }

type tocEntry struct {
	id         int64
	desc       string
	schema     string
	tag        string
	dependsOn  []string
	definition string
}

// newArchive writes the header and TOC of a format 1.minor archive.
func newArchive(minor byte, entries []tocEntry) *archive {
	a := &archive{minor: minor, intSize: 4}
	a.WriteString("PGDMP")
	a.Write([]byte{1, minor, 0, byte(a.intSize), 8, pgArchiveCustom})
	if minor >= 15 {
		a.WriteByte(0) // no compression
	} else {
		a.int(0)
	}
	for _, v := range []int64{5, 4, 3, 23, 10, 126, 0} {
		a.int(v)
	}
	a.str("app")
	a.str("15.8")
	a.str("15.8")
	a.int(int64(len(entries)))
	for _, e := range entries {
		a.int(e.id)
		a.int(1)
		a.str("1259")
		a.str("16384")
		a.str(e.tag)
		a.str(e.desc)
		a.int(2)
		a.str(e.definition)
		a.str("")
		a.null()
		a.str(e.schema)
		a.str("")
		if minor >= 14 {
			a.str("heap")
		}
		if minor >= 16 {
			a.int('r')
		}
		a.str("postgres")
		a.str("false")
		for _, d := range e.dependsOn {
			a.str(d)
		}
		a.null()
		a.Write([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	}
	return a
}

// data writes a table data block of the given chunks.
func (a *archive) data(id int64, chunks ...string) {
	a.WriteByte(pgBlockData)
	a.int(id)
	for _, c := range chunks {
		a.int(int64(len(c)))
		a.WriteString(c)
	}
	a.int(0)
}

// blobs writes a large-object block.
func (a *archive) blobs(id int64, objects map[int64]string) {
	a.WriteByte(pgBlockBlobs)
	a.int(id)
	for oid, data := range objects {
		a.int(oid)
		a.int(int64(len(data)))
		a.WriteString(data)
		a.int(0)
	}
	a.int(0)
}

// sampleArchive has a table with awkward rows split across chunks at odd
// places, an empty table, a table whose data comes in two blocks, an
// extension's configuration table (data but no TABLE entry) and large
// objects.
func sampleArchive(minor byte) (*archive, map[string]int64) {
	a := newArchive(minor, []tocEntry{
		{id: 1, desc: "ENCODING", tag: "ENCODING", definition: "SET client_encoding = 'UTF8';\n"},
		{id: 10, desc: "TABLE", schema: "public", tag: "pupils", definition: "CREATE TABLE public.pupils (...);"},
		{id: 11, desc: "TABLE", schema: "Sales", tag: "empty one"},
		{id: 12, desc: "TABLE", schema: "public", tag: "split"},
		{id: 20, desc: "TABLE DATA", schema: "public", tag: "pupils", dependsOn: []string{"10"}},
		{id: 21, desc: "TABLE DATA", schema: "Sales", tag: "empty one", dependsOn: []string{"11"}},
		{id: 22, desc: "TABLE DATA", schema: "public", tag: "split", dependsOn: []string{"12"}},
		{id: 23, desc: "TABLE DATA", schema: "ext", tag: "config"},
		{id: 30, desc: "BLOBS", tag: "BLOBS"},
		{id: 40, desc: "SEQUENCE SET", schema: "public", tag: "pupils_id_seq", definition: strings.Repeat("x", 300)},
	})
	a.data(20,
		"1\tAda\n", "2\t\\\\.\n", // a value of "\." is escaped: a row, not the end
		"\n", // an empty row (one empty column)
		"3\tline\\nbreak\n4\tsplit ",
		"across chunks\n", "\\",
		".\n\n\n", // the end marker split across chunks; nothing after it counts
	)
	a.data(21, "\\.\n\n\n")
	a.data(22, "1\n2\n\\.\n")
	a.data(23, "a\nb\n\\.\n")
	a.blobs(30, map[int64]string{16400: "a large\nobject\n\\.\n"})
	a.data(22, "3\n\\", ".\n") // a second block of the same entry adds up
	return a, map[string]int64{"public.pupils": 5, "Sales.empty one": 0, "public.split": 3}
}

func parseArchive(t *testing.T, data []byte, writes int) (map[string]int64, error) {
	t.Helper()
	var out bytes.Buffer
	c := newPGArchiveCounter(&out)
	step := max(1, len(data)/writes)
	for rest := data; len(rest) > 0; {
		k := min(step, len(rest))
		if _, err := c.Write(rest[:k]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[k:]
	}
	counts, err := c.finish()
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("the counter changed the stream: %d bytes in, %d out", len(data), out.Len())
	}
	got := map[string]int64{}
	for _, tr := range counts {
		got[tr.Name] = tr.Rows
	}
	return got, err
}

func TestPGArchiveCounts(t *testing.T) {
	for _, minor := range []byte{12, 13, 14, 15, 16} {
		a, want := sampleArchive(minor)
		for _, writes := range []int{1, 7, len(a.Bytes())} {
			got, err := parseArchive(t, a.Bytes(), writes)
			if err != nil {
				t.Fatalf("1.%d, %d writes: %v", minor, writes, err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("1.%d, %d writes: counts %v, want %v", minor, writes, got, want)
			}
		}
	}
}

// An archive the parser does not read gives an error (the caller then
// counts with count(*)) and passes through unchanged.
func TestPGArchiveRefused(t *testing.T) {
	good, _ := sampleArchive(16)
	compressed := newArchive(14, nil)
	compressed.Bytes()[12] = 6 // the compression level int's low byte (after its sign byte): gzip level 6
	compressed15 := newArchive(15, nil)
	compressed15.Bytes()[11] = 3 // the compression algorithm byte: zstd
	unknownBlock := newArchive(16, nil)
	unknownBlock.WriteByte(9)
	unknownBlock.int(1)
	for _, tc := range []struct {
		name        string
		data        []byte
		unsupported bool
		want        string
	}{
		{"plain SQL", []byte("--\n-- PostgreSQL database dump\n--\n" + strings.Repeat("SELECT 1;\n", 100000)), true, "no PGDMP magic"},
		{"newer format", append([]byte("PGDMP\x01\x11\x00"), good.Bytes()[8:]...), true, "format version 1.17"},
		{"older format", append([]byte("PGDMP\x01\x0b\x00"), good.Bytes()[8:]...), true, "format version 1.11"},
		{"directory format", append(append([]byte{}, good.Bytes()[:10]...), append([]byte{3}, good.Bytes()[11:]...)...), true, "format 3 is not custom"},
		{"compressed 1.14", compressed.Bytes(), true, "compressed"},
		{"compressed 1.15", compressed15.Bytes(), true, "compressed"},
		{"cut in the TOC", good.Bytes()[:200], false, "unexpected EOF"},
		{"cut in a data block", good.Bytes()[:len(good.Bytes())-3], false, "unexpected EOF"},
		{"unknown block", unknownBlock.Bytes(), false, "unknown block type 9"},
	} {
		_, err := parseArchive(t, tc.data, 5)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUnsupportedArchive) != tc.unsupported {
			t.Errorf("%s: error %v, want one containing %q (unsupported %v)", tc.name, err, tc.want, tc.unsupported)
		}
	}
}

func TestCopyLines(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		rows int64
	}{
		{[]string{"a\nb\n"}, 2},
		{[]string{"a\n\\.\nb\n"}, 1},
		{[]string{"\\", "\\", ".\n"}, 1}, // "\\." is a row
		{[]string{"\\x\n\\.\n"}, 1},
		{[]string{"\n\n"}, 2},
		{[]string{"\\.x\n", "\\.\n"}, 1},
		{[]string{"partial"}, 0},
	} {
		var c copyLines
		for _, s := range tc.in {
			c.write([]byte(s))
		}
		if c.rows != tc.rows {
			t.Errorf("%q: %d rows, want %d", tc.in, c.rows, tc.rows)
		}
	}
}

// FuzzPGArchive: the parser ends on any input, with counts or an error,
// without panicking, and reads the same counts through a small buffer (so
// chunks cross buffer boundaries) as through a large one. That the counter
// passes the stream through unchanged is TestPGArchiveCounts' and
// TestPGArchiveRefused's job; here the parser runs directly, for speed.
func FuzzPGArchive(f *testing.F) {
	for _, minor := range []byte{12, 14, 15, 16} {
		a, _ := sampleArchive(minor)
		f.Add(a.Bytes())
	}
	f.Add([]byte("PGDMP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parse := func(size int) (map[string]int64, dumpinfo.Head, error) {
			src := &countingReader{r: bytes.NewReader(data)}
			p := &pgArchiveParser{src: src, r: &parseReader{Reader: bufio.NewReaderSize(src, size), head: sha256.New()}, countRows: true}
			counts, err := p.parse()
			got := map[string]int64{}
			for _, tr := range counts {
				got[tr.Name] = tr.Rows
			}
			var head dumpinfo.Head
			if p.head != nil {
				head = *p.head
			}
			return got, head, err
		}
		small, shead, serr := parse(16)
		large, lhead, lerr := parse(1 << 16)
		if shead != lhead {
			t.Fatalf("buffer size changes the head's digest: %+v / %+v", shead, lhead)
		}
		if (serr == nil) != (lerr == nil) || !maps.Equal(small, large) {
			t.Fatalf("buffer size changes the result: %v %v / %v %v", small, serr, large, lerr)
		}
	})
}
