package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/storage"
)

// TestPartSizes: parts start at the part size, double every 1,000 parts,
// never exceed S3's 5 GiB per part, and 10,000 of them hold 4.8 TiB, near
// S3's largest object (5 TiB).
func TestPartSizes(t *testing.T) {
	const base = 5 << 20
	for _, tc := range []struct {
		n    int32
		want int64
	}{{1, base}, {1000, base}, {1001, 2 * base}, {2000, 2 * base}, {2001, 4 * base}, {9001, 512 * base}, {10000, 512 * base}} {
		if got := partSizeFor(base, partsPerStep, tc.n); got != tc.want {
			t.Errorf("part %d: %d bytes, want %d", tc.n, got, tc.want)
		}
	}
	var total int64
	for n := int32(1); n <= maxParts; n++ {
		size := partSizeFor(base, partsPerStep, n)
		if size > maxPartSize {
			t.Fatalf("part %d: %d bytes, over S3's %d", n, size, int64(maxPartSize))
		}
		total += size
	}
	if total < 48<<40/10 {
		t.Errorf("10,000 parts hold %d bytes, less than 4.8 TiB", total)
	}
	// A large configured part size is capped, not overflowed.
	if got := partSizeFor(maxPartSize, partsPerStep, maxParts); got != maxPartSize {
		t.Errorf("largest part %d, want the 5 GiB cap", got)
	}
}

// TestGrowingParts uploads to a real server with the part size doubling
// every two parts instead of every 1,000, and checks that the server
// accepted parts of growing sizes (HeadObject per part number) and holds
// exactly the bytes sent, and that PartMemory followed the buffers as they
// grew (OnPartMemory heard it) and is back to zero after the upload.
func TestGrowingParts(t *testing.T) {
	s := newTestStore(t, "primary", "grow")
	s.partsPerStep = 2
	const mib = 1 << 20
	var peak atomic.Int64
	storage.OnPartMemory(func(total int64) {
		if total > peak.Load() {
			peak.Store(total)
		}
	})
	defer storage.OnPartMemory(func(int64) {})
	data := randomBytes(47 * mib) // parts of 5, 5, 10, 10 and the last 17 MiB (a 20 MiB buffer)
	info, err := s.Put(t.Context(), "app/b1/payload", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Two buffers at most: the last part's 20 MiB and one of 10 or 20.
	if p := peak.Load(); p < 30*mib || p > 40*mib {
		t.Errorf("part memory peaked at %d MiB, want 30 to 40 (two buffers, the larger 20 MiB)", p/mib)
	}
	if n := storage.PartMemory(); n != 0 {
		t.Errorf("part memory %d bytes after the upload, want 0", n)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("size %d, want %d", info.Size, len(data))
	}
	for i, want := range []int64{5 * mib, 5 * mib, 10 * mib, 10 * mib, 17 * mib} {
		head, err := s.client.HeadObject(t.Context(), &s3.HeadObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.keyPrefix + "app/b1/payload"), PartNumber: aws.Int32(int32(i + 1)),
		})
		if err != nil {
			t.Fatalf("head part %d: %v", i+1, err)
		}
		if got := aws.ToInt64(head.ContentLength); got != want {
			t.Errorf("part %d holds %d bytes, want %d", i+1, got, want)
		}
		if n := aws.ToInt32(head.PartsCount); n != 5 {
			t.Errorf("object has %d parts, want 5", n)
		}
	}
	if got := readAll(t, s, "app/b1/payload"); !bytes.Equal(got, data) {
		t.Error("read back differs from what was sent")
	}
}

// sliceParts is a storage.PartReader over a byte slice that counts the
// parts it hands out and their releases.
type sliceParts struct {
	data              []byte
	off               int
	handed, releasedN atomic.Int32
}

func (p *sliceParts) Read(b []byte) (int, error) {
	panic("a store read a PartReader through Read")
}

func (p *sliceParts) NextPart(_ context.Context, size int64) ([]byte, func(), error) {
	if p.off == len(p.data) {
		return nil, nil, io.EOF
	}
	end := min(p.off+int(size), len(p.data))
	part := p.data[p.off:end:end]
	p.off = end
	p.handed.Add(1)
	var once atomic.Bool
	return part, func() {
		if once.Swap(true) {
			panic("part released twice")
		}
		p.releasedN.Add(1)
	}, nil
}

// TestSharedParts uploads a PartReader to a real server: the store sends
// the shared buffers as they are (no part memory of its own), the server
// holds exactly the bytes, and every part is released once, for a
// multipart object, a one-request object and an empty one.
func TestSharedParts(t *testing.T) {
	s := newTestStore(t, "primary", "shared")
	const mib = 1 << 20
	for _, tc := range []struct {
		name  string
		size  int
		parts int32
	}{{"multipart", 12*mib + 5, 3}, {"one part", mib, 1}, {"empty", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var peak atomic.Int64
			storage.OnPartMemory(func(total int64) { peak.Store(max(peak.Load(), total)) })
			defer storage.OnPartMemory(func(int64) {})
			data := randomBytes(tc.size)
			src := &sliceParts{data: data}
			key := "app/shared/" + strings.ReplaceAll(tc.name, " ", "-")
			info, err := s.Put(t.Context(), key, src)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(data)) {
				t.Errorf("size %d, want %d", info.Size, len(data))
			}
			if p := peak.Load(); p != 0 {
				t.Errorf("the store allocated %d bytes of part buffers of its own", p)
			}
			if h, r := src.handed.Load(), src.releasedN.Load(); h != tc.parts || r != h {
				t.Errorf("%d parts handed out and %d released, want %d and %d", h, r, tc.parts, tc.parts)
			}
			if got := readAll(t, s, key); !bytes.Equal(got, data) {
				t.Error("read back differs from what was sent")
			}
		})
	}
}

// cancelledParts hands out the parts of data until part cancelAt is asked
// for; then it cancels the upload's context and fails as the backup's
// fan-out does. Each released part is overwritten at once, as the fan-out
// refills it: under -race, a request still reading a part after its upload
// gave it back is reported.
type cancelledParts struct {
	sliceParts
	cancelAt int32
	cancel   context.CancelFunc
}

func (p *cancelledParts) NextPart(ctx context.Context, size int64) ([]byte, func(), error) {
	if p.handed.Load()+1 == p.cancelAt {
		p.cancel()
		<-ctx.Done()
		return nil, nil, context.Cause(ctx)
	}
	data, release, err := p.sliceParts.NextPart(ctx, size)
	if err != nil {
		return nil, nil, err
	}
	return data, func() {
		release()
		for i := range data {
			data[i] = 0xff
		}
	}, nil
}

// TestSharedPartsCancelled: a backup cancelled while shared parts are in
// flight leaves no object and no multipart upload behind, and every part
// handed out is given back exactly once, after which the store no longer
// reads it.
func TestSharedPartsCancelled(t *testing.T) {
	s := newTestStore(t, "primary", "shared")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := &cancelledParts{sliceParts: sliceParts{data: randomBytes(40 << 20)}, cancelAt: 4, cancel: cancel}
	const key = "app/shared/cancelled"
	if _, err := s.Put(ctx, key, src); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled after 3 parts: %v, want context.Canceled", err)
	}
	if h, r := src.handed.Load(), src.releasedN.Load(); h != 3 || r != h {
		t.Errorf("%d parts handed out and %d released, want 3 and 3", h, r)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat after a cancelled Put: %v, want not found", err)
	}
	if keys, err := s.ListMultipartUploads(t.Context()); err != nil || len(keys) != 0 {
		t.Errorf("multipart uploads left after a cancelled Put: %v (%v), want none", keys, err)
	}
}
