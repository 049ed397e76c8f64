package backup

import (
	"testing"

	"github.com/coffer-backup/coffer/storage"
)

// sizer is an S3-like part schedule: base bytes, doubling every perStep
// parts, except part odd, which is one byte more when set.
type sizer struct {
	storage.Store
	base    int64
	perStep int32
	odd     int32
	buffers int
}

func (s sizer) PartSize(n int32) int64 {
	size := s.base << ((n - 1) / s.perStep)
	if n == s.odd {
		size++
	}
	return size
}

func (s sizer) PartBuffers() int { return s.buffers }

// TestPartSchedule: destinations share part buffers only when they agree
// on the size of every part an upload can have, not just the first ones.
func TestPartSchedule(t *testing.T) {
	dests := func(stores ...storage.Store) []storage.Destination {
		var ds []storage.Destination
		for i, s := range stores {
			ds = append(ds, storage.Destination{Name: string(rune('a' + i)), Store: s})
		}
		return ds
	}
	s3 := sizer{base: 5 << 20, perStep: 1000, buffers: 2}
	sizeFor, buffers, ok := partSchedule(dests(s3, sizer{base: 5 << 20, perStep: 1000, buffers: 3}))
	if !ok || buffers != 3 || sizeFor(1001) != 10<<20 {
		t.Fatalf("equal schedules: ok %v, %d buffers, part 1001 of %d bytes; want shared, 3 buffers (the most asked), 10 MiB", ok, buffers, sizeFor(1001))
	}
	for name, other := range map[string]sizer{
		"part 7 one byte more":    {base: 5 << 20, perStep: 1000, buffers: 2, odd: 7},
		"part 9999 one byte more": {base: 5 << 20, perStep: 1000, buffers: 2, odd: 9999},
		"doubling at part 1000":   {base: 5 << 20, perStep: 999, buffers: 2},
		"8 MiB parts":             {base: 8 << 20, perStep: 1000, buffers: 2},
	} {
		if _, _, ok := partSchedule(dests(s3, other)); ok {
			t.Errorf("schedules differ (%s): shared parts chosen; want each upload to read the stream", name)
		}
	}
	if _, _, ok := partSchedule(dests(s3, nil)); ok {
		t.Error("a destination that does not upload in parts: shared parts chosen")
	}
}
