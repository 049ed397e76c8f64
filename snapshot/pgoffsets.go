package snapshot

import (
	"fmt"
	"os"
)

// Data offset flags of a custom-format archive's TOC entry
// (pg_backup_custom.c: K_OFFSET_POS_NOT_SET, K_OFFSET_POS_SET).
const (
	pgOffsetNotSet = 1
	pgOffsetSet    = 2
)

// pgDataOffsets says where the data blocks of a custom-format archive
// written to a pipe begin, and where its table of contents keeps each
// entry's data offset, which pg_dump leaves "not set" when it cannot seek
// back to fill it in.
//
// Without the offsets, each pg_restore --jobs worker finds a table's data
// by reading the archive from the last block it knows, one block header
// at a time; pg_dump writes a block for every row, so on a 1.3 GB
// database of 40 tables pg_restore -j2 spent 14.9 CPU seconds (1.4 from
// a file with the offsets set) and took 1.4 times as long. Filled in,
// each worker seeks straight to its table.
type pgDataOffsets struct {
	offSize int
	// slots maps a dump id to the position of its TOC entry's offset
	// flag, for entries whose flag says "not set".
	slots map[int64]int64
	// blocks maps a dump id to the position of its first data block.
	blocks map[int64]int64
}

// patch writes into the archive f the offsets of the data blocks found,
// in the TOC entries that had none, and returns how many it set. An
// offset pg_restore finds wrong is an error there ("found unexpected
// block ID"), never a silent misread: it checks the block's dump id.
func (o *pgDataOffsets) patch(f *os.File) (int, error) {
	n := 0
	for id := range o.slots {
		at, ok := o.blocks[id]
		if !ok {
			continue // an entry with no data block (pg_restore skips it)
		}
		set, err := o.patchOne(f, id, at)
		if err != nil {
			return n, err
		}
		if set {
			n++
		}
	}
	return n, nil
}

// patchOne writes offset at into the TOC entry of dump id in f, if its
// offset was not set, and says whether it did. Once the table of contents
// is read, it may run beside the parser (it reads only slots).
func (o *pgDataOffsets) patchOne(f *os.File, id, at int64) (bool, error) {
	slot, ok := o.slots[id]
	if !ok {
		return false, nil
	}
	if o.offSize < 8 && at >= 1<<(8*o.offSize) {
		return false, fmt.Errorf("data offset %d of entry %d does not fit in %d bytes", at, id, o.offSize)
	}
	buf := make([]byte, 1+o.offSize)
	buf[0] = pgOffsetSet
	for i := range o.offSize {
		buf[1+i] = byte(uint64(at) >> (8 * i))
	}
	if _, err := f.WriteAt(buf, slot); err != nil {
		return false, fmt.Errorf("set the data offset of entry %d in %s: %w", id, f.Name(), err)
	}
	return true, nil
}
