package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/storage"
)

// Coffer streams uploads with its own multipart uploader rather than the
// SDK's transfermanager, for two reasons: memory and size. The
// transfermanager allocates Concurrency+1 part buffers up front plus a
// first part grown by io.ReadAll (about 32 MiB per upload with 8 MiB parts,
// 48 MiB allocated for the first part of two uploads), and its part size is
// fixed for the upload, so a stream of unknown size is capped at 10,000 ×
// PartSize. Here part buffers are allocated only when every existing one is
// busy, and never more than Concurrency (at least two), and the part size doubles every partsPerStep parts, so the
// memory of an upload is flat up to partsPerStep × 2 × PartSize and an
// object can reach 4.8 TiB (S3's limit is 5 TiB).
const (
	// maxParts is S3's limit on the parts of one multipart upload.
	maxParts = storage.MaxParts
	// partsPerStep is how many parts go up at one size before it doubles:
	// with 5 MiB first parts the size stays 5 MiB up to 4.9 GiB, 10 MiB up
	// to 14.6 GiB, and 10,000 parts hold 4.8 TiB.
	partsPerStep = 1000
	// headSize is what Put reads before deciding between one PutObject and
	// a multipart upload, so small objects never cost a part buffer.
	headSize = 64 << 10
)

// partSizeFor returns the size of part n (numbered from 1) of an upload
// whose first perStep parts are base bytes.
func partSizeFor(base int64, perStep, n int32) int64 {
	step := (n - 1) / perStep
	if step > 20 { // never shift past maxPartSize
		return maxPartSize
	}
	return min(base<<step, maxPartSize)
}

func (s *Store) partSizeFor(n int32) int64 { return partSizeFor(s.partSize, s.partsPerStep, n) }

// putRequest is one upload's destination and the headers it carries.
type putRequest struct {
	bucket, key string
	ifNoneMatch bool // only create: If-None-Match: *
	lockMode    types.ObjectLockMode
	retainUntil *time.Time
	checksum    types.ChecksumAlgorithm // "" unless Object Lock needs one
}

// multipartError is a failed multipart upload. uploadID is "" when
// CreateMultipartUpload itself failed (the server may still have created
// one: cleanupFailedUpload looks for it).
type multipartError struct {
	uploadID string
	err      error
}

func (e *multipartError) Error() string { return e.err.Error() }
func (e *multipartError) Unwrap() error { return e.err }

// send streams body to req.key and returns the object's ETag. A body
// shorter than the part size goes up in one PutObject; a longer one in a
// multipart upload, which on failure is returned as a *multipartError for
// cleanupFailedUpload to abort.
func (s *Store) send(ctx context.Context, req putRequest, body *countingReader) (string, error) {
	if body.parts != nil {
		return s.sendShared(ctx, req, body)
	}
	head := make([]byte, min(headSize, s.partSize))
	n, err := io.ReadFull(body, head)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return s.putObject(ctx, req, head[:n])
	case err != nil:
		return "", err
	}
	// As many buffers as parts in flight, and at least two so the next
	// part is read while one goes up: reading further ahead gains nothing
	// when the server is the bottleneck, and costs a part's memory.
	pool := newPartPool(max(s.concurrency, 2))
	defer pool.release()
	first, err := pool.get(ctx, s.partSizeFor(1))
	if err != nil {
		return "", err
	}
	copy(first, head)
	m, err := io.ReadFull(body, first[n:])
	first = first[:n+m]
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		defer pool.put(first)
		return s.putObject(ctx, req, first)
	case err != nil:
		pool.put(first)
		return "", err
	}
	src := &pooledParts{pool: pool, body: body}
	return s.sendParts(ctx, req, src, part{num: 1, data: first, release: func() { pool.put(first) }})
}

// sendShared is send for a body that hands out shared part buffers: no
// buffer of the store's own is allocated. A part is released as soon as
// its UploadPart returns, also when cancelled: the SDK closes its wrapper
// of every request body when the request returns (smithy-go's safe read
// closer), so a transport goroutine still writing a dead request reads
// nothing more from the buffer (TestSharedPartsCancelled checks that
// under -race).
func (s *Store) sendShared(ctx context.Context, req putRequest, body *countingReader) (string, error) {
	src := &sharedParts{body: body}
	first, err := src.next(ctx, s.partSizeFor(1))
	if errors.Is(err, io.EOF) {
		return s.putObject(ctx, req, nil)
	}
	if err != nil {
		return "", err
	}
	if int64(len(first.data)) < s.partSizeFor(1) {
		defer first.release()
		return s.putObject(ctx, req, first.data)
	}
	return s.sendParts(ctx, req, src, first)
}

// partSource hands out the parts of one upload in order.
type partSource interface {
	// next returns the next part of size bytes (fewer at the end of the
	// stream), or io.EOF when the stream has ended.
	next(ctx context.Context, size int64) (part, error)
}

// pooledParts reads parts from a plain stream into the upload's own
// buffers.
type pooledParts struct {
	pool *partPool
	body io.Reader
}

func (p *pooledParts) next(ctx context.Context, size int64) (part, error) {
	buf, err := p.pool.get(ctx, size)
	if err != nil {
		return part{}, err
	}
	n, err := io.ReadFull(p.body, buf)
	switch {
	case errors.Is(err, io.EOF):
		p.pool.put(buf)
		return part{}, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		buf = buf[:n]
	case err != nil:
		p.pool.put(buf)
		return part{}, err
	}
	return part{data: buf, release: func() { p.pool.put(buf) }}, nil
}

// sharedParts takes parts from a storage.PartReader, read-only.
type sharedParts struct{ body *countingReader }

func (p *sharedParts) next(ctx context.Context, size int64) (part, error) {
	if err := p.body.ctx.Err(); err != nil {
		return part{}, err
	}
	data, release, err := p.body.parts.NextPart(ctx, size)
	if err != nil {
		if release != nil {
			release()
		}
		return part{}, err
	}
	if int64(len(data)) > size {
		release()
		return part{}, fmt.Errorf("shared part of %d bytes, %d asked for", len(data), size)
	}
	p.body.n.Add(int64(len(data)))
	return part{data: data, release: release}, nil
}

// putObject uploads data in one request.
func (s *Store) putObject(ctx context.Context, req putRequest, data []byte) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:                    aws.String(req.bucket),
		Key:                       aws.String(req.key),
		Body:                      bytes.NewReader(data),
		ContentLength:             aws.Int64(int64(len(data))),
		ObjectLockMode:            req.lockMode,
		ObjectLockRetainUntilDate: req.retainUntil,
		ChecksumAlgorithm:         req.checksum,
	}
	if req.ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// part is one filled buffer on its way to UploadPart; release gives the
// buffer back once the part is sent or has failed.
type part struct {
	num     int32
	data    []byte
	release func()
}

// sendParts runs a multipart upload whose first part is first and whose
// further parts come from src. Up to s.concurrency parts are in flight
// while the next one is read.
func (s *Store) sendParts(ctx context.Context, req putRequest, src partSource, first part) (string, error) {
	create := &s3.CreateMultipartUploadInput{
		Bucket:                    aws.String(req.bucket),
		Key:                       aws.String(req.key),
		ObjectLockMode:            req.lockMode,
		ObjectLockRetainUntilDate: req.retainUntil,
		ChecksumAlgorithm:         req.checksum,
	}
	created, err := s.client.CreateMultipartUpload(ctx, create)
	if err != nil {
		first.release()
		return "", &multipartError{err: err}
	}
	id := aws.ToString(created.UploadId)
	if id == "" {
		first.release()
		return "", &multipartError{err: errors.New("CreateMultipartUpload returned no upload id")}
	}
	fail := func(err error) (string, error) { return "", &multipartError{uploadID: id, err: err} }

	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		done []types.CompletedPart
		wg   sync.WaitGroup
	)
	queue := make(chan part)
	for range s.concurrency {
		wg.Go(func() {
			for p := range queue {
				if uctx.Err() == nil {
					cp, err := s.uploadPart(uctx, req, id, p)
					if err != nil {
						cancel(fmt.Errorf("part %d: %w", p.num, err))
					} else {
						mu.Lock()
						done = append(done, cp)
						mu.Unlock()
					}
				}
				p.release()
			}
		})
	}
	sent, readErr := s.feedParts(uctx, src, first, queue)
	close(queue)
	wg.Wait()
	if readErr != nil {
		return fail(readErr)
	}
	if err := context.Cause(uctx); err != nil {
		return fail(err)
	}
	if int32(len(done)) != sent {
		return fail(fmt.Errorf("%d of %d parts uploaded", len(done), sent))
	}
	slices.SortFunc(done, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(req.bucket),
		Key:             aws.String(req.key),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}
	if req.ifNoneMatch {
		complete.IfNoneMatch = aws.String("*")
	}
	out, err := s.client.CompleteMultipartUpload(ctx, complete)
	if err != nil {
		return fail(err)
	}
	return aws.ToString(out.ETag), nil
}

// feedParts queues first and then every further part from src, and
// returns how many parts it queued. It stops early when ctx is done (a part
// failed) or the read fails; a part count beyond S3's limit is an error.
func (s *Store) feedParts(ctx context.Context, src partSource, first part, queue chan<- part) (int32, error) {
	p := first
	p.num = 1
	for {
		select {
		case queue <- p:
		case <-ctx.Done():
			p.release()
			return p.num - 1, nil
		}
		if int64(len(p.data)) < s.partSizeFor(p.num) {
			return p.num, nil // a short part is the last
		}
		num := p.num + 1
		if num > maxParts {
			// Only reachable past 4.8 TiB with the default part size.
			extra, err := src.next(ctx, 1)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				return p.num, err
			}
			extra.release()
			return p.num, fmt.Errorf("object larger than %d parts (%d bytes per part at the end)", maxParts, len(p.data))
		}
		next, err := src.next(ctx, s.partSizeFor(num))
		switch {
		case errors.Is(err, io.EOF):
			return p.num, nil
		case err != nil:
			if ctx.Err() != nil {
				return p.num, nil // ctx done: the cause is reported by the caller
			}
			return p.num, err
		}
		next.num = num
		p = next
	}
}

// uploadPart sends one part and returns what CompleteMultipartUpload needs
// of it.
func (s *Store) uploadPart(ctx context.Context, req putRequest, id string, p part) (types.CompletedPart, error) {
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:            aws.String(req.bucket),
		Key:               aws.String(req.key),
		UploadId:          aws.String(id),
		PartNumber:        aws.Int32(p.num),
		Body:              bytes.NewReader(p.data),
		ContentLength:     aws.Int64(int64(len(p.data))),
		ChecksumAlgorithm: req.checksum,
	})
	if err != nil {
		return types.CompletedPart{}, err
	}
	if aws.ToString(out.ETag) == "" {
		return types.CompletedPart{}, errors.New("UploadPart returned no ETag")
	}
	return types.CompletedPart{
		PartNumber:    aws.Int32(p.num),
		ETag:          out.ETag,
		ChecksumCRC32: out.ChecksumCRC32,
	}, nil
}

// partPool hands out part buffers. It allocates a buffer only when every
// existing one is in use and fewer than max exist, so an upload to a fast
// server holds two buffers, not max. What its buffers hold counts in
// storage.PartMemory until release.
type partPool struct {
	free  chan []byte
	slots chan struct{} // one token per buffer that exists
	held  atomic.Int64  // bytes of the buffers that exist
}

func newPartPool(max int) *partPool {
	return &partPool{free: make(chan []byte, max), slots: make(chan struct{}, max)}
}

// get returns a buffer of size bytes, waiting for one to be put back when
// max exist already.
func (p *partPool) get(ctx context.Context, size int64) ([]byte, error) {
	select {
	case b := <-p.free:
		return p.fit(b, size), nil
	default:
	}
	select {
	case b := <-p.free:
		return p.fit(b, size), nil
	case p.slots <- struct{}{}:
		p.grow(size)
		return make([]byte, size), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// fit reuses b for size bytes, or replaces it when the part size has grown.
func (p *partPool) fit(b []byte, size int64) []byte {
	if int64(cap(b)) >= size {
		return b[:size]
	}
	p.grow(size - int64(cap(b)))
	return make([]byte, size)
}

// put returns a buffer from get.
func (p *partPool) put(b []byte) { p.free <- b[:cap(b)] }

// release ends the pool's share of storage.PartMemory: its buffers are garbage.
func (p *partPool) release() { p.grow(-p.held.Swap(0)) }

func (p *partPool) grow(n int64) {
	p.held.Add(n)
	storage.AddPartMemory(n)
}

// PartSize is the size of part n (from 1) of the store's uploads.
func (s *Store) PartSize(n int32) int64 { return s.partSizeFor(n) }

// PartBuffers is how many part buffers one upload keeps.
func (s *Store) PartBuffers() int { return max(s.concurrency, 2) }
