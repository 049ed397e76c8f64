package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgArchiveTee passes a pg_dump custom-format archive through to w and
// parses it as it streams past: at backup time it counts the rows of every
// table whose data it holds (newPGArchiveCounter), so that a PostgreSQL
// backup needs no second read of the database to record its row counts;
// at a parallel restore it records where each table's data begins
// (newPGOffsetRecorder).
//
// The archive written to a pipe is a header, the table of contents (TOC)
// and then one data block per TABLE DATA entry, in which pg_dump writes
// COPY text: one line per row (newlines inside values escaped), then an
// end marker. The parser runs on its own goroutine and holds no more of
// the archive than one TOC entry. An archive it does not understand (an
// unknown format version, compressed data, a malformed stream) makes
// finish return an error, and the caller counts another way (or restores
// without offsets); the dump itself is never affected.
//
// The format is pg_dump's (src/bin/pg_dump/pg_backup_archiver.c and
// pg_backup_custom.c): versions 1.12 (PostgreSQL 11) to 1.16 (17).
type pgArchiveTee struct {
	w      io.Writer
	pw     *io.PipeWriter
	done   chan struct{}
	p      *pgArchiveParser
	counts []dumpinfo.TableRows
	err    error
}

// newPGArchiveCounter starts the parser, counting rows; finish must be
// called.
func newPGArchiveCounter(w io.Writer) *pgArchiveTee {
	return startPGArchiveParser(w, &pgArchiveParser{countRows: true})
}

// newPGOffsetRecorder starts a parser that records where each data block
// begins instead of counting rows (see pgDataOffsets) in offsets, complete
// when finish returns no error, and tells watch (if not nil) what it has
// read; finish must be called.
func newPGOffsetRecorder(w io.Writer, offsets *pgDataOffsets, watch pgArchiveWatch) *pgArchiveTee {
	return startPGArchiveParser(w, &pgArchiveParser{offsets: offsets, watch: watch})
}

// startPGArchiveParser runs p over what is written to the returned
// counter, on a goroutine of its own.
func startPGArchiveParser(w io.Writer, p *pgArchiveParser) *pgArchiveTee {
	pr, pw := io.Pipe()
	c := &pgArchiveTee{w: w, pw: pw, done: make(chan struct{}), p: p}
	p.src = &countingReader{r: pr}
	p.r = &parseReader{Reader: bufio.NewReaderSize(p.src, 256<<10), head: sha256.New()}
	go func() {
		defer close(c.done)
		c.counts, c.err = p.parse()
		// Unblock the writer and make its later writes fail fast.
		pr.CloseWithError(errParserStopped)
	}()
	return c
}

var errParserStopped = errors.New("archive parser stopped")

// Write passes p to w, then to the parser; once the parser has stopped,
// the pipe refuses writes at once (errParserStopped), which is ignored.
func (c *pgArchiveTee) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		_, _ = c.pw.Write(p[:n])
	}
	return n, err
}

// finish ends the stream and returns the counts, or why there are none.
func (c *pgArchiveTee) finish() ([]dumpinfo.TableRows, error) {
	c.pw.Close()
	<-c.done
	return c.counts, c.err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// errUnsupportedArchive marks an archive the parser does not read.
var errUnsupportedArchive = errors.New("unsupported pg_dump archive")

// Archive versions (MAKE_ARCHIVE_VERSION in pg_backup_archiver.h).
const (
	pgArchV1_12 = 1<<16 | 12<<8 // separate BLOB entries (PostgreSQL 11)
	pgArchV1_14 = 1<<16 | 14<<8 // TOC entries carry the table access method
	pgArchV1_15 = 1<<16 | 15<<8 // compression algorithm in the header
	pgArchV1_16 = 1<<16 | 16<<8 // TOC entries carry relkind (PostgreSQL 17)
	pgArchMax   = 1<<16 | 16<<8 | 255
)

// Block types in the data section (pg_backup_archiver.h).
const (
	pgBlockData  = 1
	pgBlockBlobs = 3
)

const pgArchiveCustom = 1 // archCustom in pg_backup.h

// pgTableData is one TABLE DATA entry of the TOC.
type pgTableData struct {
	name        string // schema.table
	schema, tag string
	rows        int64
}

type pgArchiveParser struct {
	r   *parseReader
	src *countingReader // under r, for positions; nil when none are recorded
	// countRows counts the COPY rows of each table's data.
	countRows bool
	// offsets, when set, records where the data blocks begin.
	offsets *pgDataOffsets
	// watch, when set, hears when the table of contents and each data
	// block have been read whole.
	watch pgArchiveWatch
	// head is the digest of the archive's header and table of contents,
	// set when the table of contents has been read.
	head    *dumpinfo.Head
	version int
	intSize int
	offSize int
	tables  map[int64]*pgTableData // by dump id
}

func (p *pgArchiveParser) parse() ([]dumpinfo.TableRows, error) {
	if err := p.header(); err != nil {
		return nil, err
	}
	if err := p.toc(); err != nil {
		return nil, fmt.Errorf("table of contents: %w", err)
	}
	if err := p.data(); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	counts := make([]dumpinfo.TableRows, 0, len(p.tables))
	for _, t := range p.tables {
		counts = append(counts, dumpinfo.TableRows{Name: t.name, Rows: t.rows})
	}
	return counts, nil
}

func (p *pgArchiveParser) header() error {
	var magic [8]byte
	if _, err := io.ReadFull(p.r, magic[:8]); err != nil {
		return eof(err)
	}
	if string(magic[:5]) != "PGDMP" {
		return fmt.Errorf("%w: no PGDMP magic", errUnsupportedArchive)
	}
	p.version = int(magic[5])<<16 | int(magic[6])<<8 | int(magic[7])
	if p.version < pgArchV1_12 || p.version > pgArchMax {
		return fmt.Errorf("%w: format version %d.%d", errUnsupportedArchive, magic[5], magic[6])
	}
	var sizes [3]byte
	if _, err := io.ReadFull(p.r, sizes[:]); err != nil {
		return eof(err)
	}
	p.intSize, p.offSize = int(sizes[0]), int(sizes[1])
	if p.offsets != nil {
		p.offsets.offSize = p.offSize
		p.offsets.slots, p.offsets.blocks = map[int64]int64{}, map[int64]int64{}
	}
	if p.intSize < 1 || p.intSize > 8 || p.offSize < 1 || p.offSize > 8 {
		return fmt.Errorf("%w: integer size %d, offset size %d", errUnsupportedArchive, p.intSize, p.offSize)
	}
	if sizes[2] != pgArchiveCustom {
		return fmt.Errorf("%w: format %d is not custom", errUnsupportedArchive, sizes[2])
	}
	var compressed int64
	if p.version >= pgArchV1_15 {
		b, err := p.r.ReadByte()
		if err != nil {
			return eof(err)
		}
		compressed = int64(b)
	} else {
		var err error
		if compressed, err = p.int(); err != nil {
			return err
		}
	}
	if compressed != 0 {
		return fmt.Errorf("%w: compressed data", errUnsupportedArchive)
	}
	for range 7 { // creation time: sec, min, hour, mday, mon, year, isdst
		if _, err := p.int(); err != nil {
			return err
		}
	}
	for range 3 { // database name, server version, pg_dump version
		if err := p.skipStr(); err != nil {
			return err
		}
	}
	return nil
}

// toc reads the table of contents and records every TABLE DATA entry that
// belongs to a TABLE entry. An extension's configuration table has data
// but no TABLE entry (CREATE EXTENSION makes it, with rows of its own that
// the dump leaves out); it is not counted, as Scratch.Tables does not count
// extension members.
func (p *pgArchiveParser) toc() error {
	p.tables = map[int64]*pgTableData{}
	n, err := p.int()
	if err != nil {
		return err
	}
	if n < 0 || n > 1<<26 {
		return fmt.Errorf("%d entries", n)
	}
	tables := map[string]bool{}
	data := map[int64]pgx.Identifier{}
	for range n {
		id, err := p.int()
		if err != nil {
			return err
		}
		if _, err := p.int(); err != nil { // had a data dumper
			return err
		}
		if err := p.skipStrs(2); err != nil { // table oid, oid
			return err
		}
		tag, err := p.name()
		if err != nil {
			return err
		}
		desc, err := p.name()
		if err != nil {
			return err
		}
		if _, err := p.int(); err != nil { // section
			return err
		}
		if err := p.skipStrs(3); err != nil { // definition, drop, copy statements
			return err
		}
		schema, err := p.name()
		if err != nil {
			return err
		}
		if err := p.skipStrs(1); err != nil { // tablespace
			return err
		}
		if p.version >= pgArchV1_14 {
			if err := p.skipStrs(1); err != nil { // table access method
				return err
			}
		}
		if p.version >= pgArchV1_16 {
			if _, err := p.int(); err != nil { // relkind
				return err
			}
		}
		if err := p.skipStrs(2); err != nil { // owner, "with oids"
			return err
		}
		for { // dependencies, ended by a NULL string
			_, ok, err := p.str(64)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
		}
		// Data offset: a flag byte and offSize bytes.
		at := p.pos()
		flag, err := p.r.ReadByte()
		if err != nil {
			return eof(err)
		}
		if _, err := p.r.Discard(p.offSize); err != nil {
			return eof(err)
		}
		if p.offsets != nil && flag == pgOffsetNotSet {
			p.offsets.slots[id] = at
		}
		name := schema + "." + tag
		switch desc {
		case "TABLE":
			tables[name] = true
		case "TABLE DATA":
			data[id] = pgx.Identifier{schema, tag}
		}
	}
	for id, st := range data {
		if name := st[0] + "." + st[1]; tables[name] {
			p.tables[id] = &pgTableData{name: name, schema: st[0], tag: st[1]}
		}
	}
	p.head = &dumpinfo.Head{Bytes: p.pos(), SHA256: hex.EncodeToString(p.r.head.Sum(nil))}
	p.r.head = nil // the data is checked whole, by the payload's digest
	if p.watch != nil {
		p.watch.tocRead(p.head)
	}
	return nil
}

// parseReader is the parser's buffered reader. Until the table of
// contents has been read it hashes every byte the parser takes (head),
// so that the digest covers exactly the archive's head.
type parseReader struct {
	*bufio.Reader
	head hash.Hash // nil once the head is read
}

func (r *parseReader) Read(b []byte) (int, error) {
	n, err := r.Reader.Read(b)
	if r.head != nil {
		r.head.Write(b[:n])
	}
	return n, err
}

func (r *parseReader) ReadByte() (byte, error) {
	c, err := r.Reader.ReadByte()
	if err == nil && r.head != nil {
		r.head.Write([]byte{c})
	}
	return c, err
}

func (r *parseReader) Discard(n int) (int, error) {
	if r.head == nil {
		return r.Reader.Discard(n)
	}
	done := 0
	for done < n {
		b, err := r.Reader.Peek(min(n-done, r.Reader.Size()))
		r.head.Write(b)
		k, _ := r.Reader.Discard(len(b))
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// pgArchiveWatch hears what the parser has read whole. The parser reads
// what the tee has already written on, so by the time it tells, those
// bytes are in the tee's writer (a spool file, for pg_restore to read).
// Its methods run on the parser's goroutine and must not block.
type pgArchiveWatch interface {
	// tocRead: the header and the table of contents are read (and the
	// offsets' slots recorded); head is their digest.
	tocRead(head *dumpinfo.Head)
	// blockRead: the data block of entry id, size bytes from start, is read.
	blockRead(id, start, size int64)
}

// maxPGName bounds the TOC strings the parser keeps: PostgreSQL names are
// at most 63 bytes.
const maxPGName = 1024

// data reads the data blocks to the end of the archive, counting the rows
// of the table data blocks.
func (p *pgArchiveParser) data() error {
	for {
		at := p.pos()
		kind, err := p.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		id, err := p.int()
		if err != nil {
			return err
		}
		if p.offsets != nil {
			if _, seen := p.offsets.blocks[id]; !seen {
				p.offsets.blocks[id] = at
			}
		}
		switch kind {
		case pgBlockData:
			var lines *copyLines
			if p.countRows {
				lines = &copyLines{}
			}
			if err := p.chunks(lines); err != nil {
				return fmt.Errorf("block of entry %d: %w", id, err)
			}
			if t := p.tables[id]; t != nil && lines != nil {
				t.rows += lines.rows
			}
			if p.watch != nil {
				p.watch.blockRead(id, at, p.pos()-at)
			}
		case pgBlockBlobs:
			for {
				oid, err := p.int()
				if err != nil {
					return err
				}
				if oid == 0 {
					break
				}
				if err := p.chunks(nil); err != nil {
					return fmt.Errorf("large object %d: %w", oid, err)
				}
			}
		default:
			return fmt.Errorf("unknown block type %d", kind)
		}
	}
}

// chunks reads length-prefixed chunks up to a zero length, feeding their
// bytes to lines when it is not nil.
func (p *pgArchiveParser) chunks(lines *copyLines) error {
	for {
		n, err := p.int()
		if err != nil {
			return err
		}
		switch {
		case n == 0:
			return nil
		case n < 0:
			return fmt.Errorf("chunk length %d", n)
		}
		for n > 0 {
			k := int(min(n, int64(p.r.Size())))
			b, err := p.r.Peek(k)
			if len(b) == 0 {
				return eof(err)
			}
			if lines != nil {
				lines.write(b)
			}
			_, _ = p.r.Discard(len(b))
			n -= int64(len(b))
		}
	}
}

// copyLines counts the rows of COPY text: the lines up to an end marker
// (a line holding only "\."), which pg_dump writes after a table's rows.
// In COPY text a backslash in a value is escaped, so no row is "\.", and
// an empty line is a row (one empty column).
type copyLines struct {
	rows  int64
	state uint8
	ended bool
}

// copyLines states: where in a line the next byte is.
const (
	clLineStart = iota
	clBackslash // after a backslash at the start of a line
	clMarker    // after "\." at the start of a line
	clInLine
)

func (c *copyLines) write(b []byte) {
	for len(b) > 0 && !c.ended {
		switch {
		case c.state == clLineStart && b[0] == '\\':
			c.state, b = clBackslash, b[1:]
			continue
		case c.state == clBackslash && b[0] == '.':
			c.state, b = clMarker, b[1:]
			continue
		case c.state == clMarker && b[0] == '\n':
			c.ended = true
			return
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.state = clInLine
			return
		}
		c.rows++
		c.state, b = clLineStart, b[i+1:]
	}
}

// int reads pg_dump's integer: a sign byte, then intSize bytes, least
// significant first.
func (p *pgArchiveParser) int() (int64, error) {
	sign, err := p.r.ReadByte()
	if err != nil {
		return 0, eof(err)
	}
	var v uint64
	for i := range p.intSize {
		b, err := p.r.ReadByte()
		if err != nil {
			return 0, eof(err)
		}
		v |= uint64(b) << (8 * i)
	}
	if v > 1<<62 {
		return 0, fmt.Errorf("integer %d out of range", v)
	}
	if sign != 0 {
		return -int64(v), nil
	}
	return int64(v), nil
}

// str reads a length-prefixed string; ok is false for a NULL string. A
// string longer than keep is skipped and returned empty.
func (p *pgArchiveParser) str(keep int) (s string, ok bool, err error) {
	n, err := p.int()
	if err != nil {
		return "", false, err
	}
	if n < 0 {
		return "", false, nil
	}
	if n > int64(keep) {
		return "", true, p.skip(n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		return "", false, eof(err)
	}
	return string(b), true, nil
}

// name reads a string the parser keeps (a tag, a type, a schema); a NULL
// string is empty.
func (p *pgArchiveParser) name() (string, error) {
	s, _, err := p.str(maxPGName)
	return s, err
}

func (p *pgArchiveParser) skipStr() error {
	n, err := p.int()
	if err != nil || n < 0 {
		return err
	}
	return p.skip(n)
}

func (p *pgArchiveParser) skipStrs(k int) error {
	for range k {
		if err := p.skipStr(); err != nil {
			return err
		}
	}
	return nil
}

func (p *pgArchiveParser) skip(n int64) error {
	if _, err := p.r.Discard(int(min(n, 1<<40))); err != nil {
		return eof(err)
	}
	return nil
}

// pos is the position in the archive of the next byte the parser reads.
func (p *pgArchiveParser) pos() int64 {
	if p.src == nil {
		return 0
	}
	return p.src.n - int64(p.r.Buffered())
}

// eof turns an end of input inside a structure into io.ErrUnexpectedEOF.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
