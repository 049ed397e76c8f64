package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// condMaxSmallObject bounds GetWithInfo: it is for leases and other small
// control objects, never for payloads.
const condMaxSmallObject = 1 << 20

var _ storage.Swapper = (*Store)(nil)

// Replace writes data under key only if the object's current ETag is etag
// (PutObject with If-Match). When the object changed, or is gone, it returns
// an error wrapping storage.ErrPreconditionFailed (and, when gone, also
// storage.ErrNotExist) and changes nothing. The returned ObjectInfo carries
// the new ETag; its ModTime is the local time of the write.
func (s *Store) Replace(ctx context.Context, key string, data []byte, etag string) (storage.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("replace %s in %s: %w", key, s, err)
	}
	if etag == "" {
		return storage.ObjectInfo{}, fmt.Errorf("replace %s in %s: empty ETag", key, s)
	}
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.keyPrefix + key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		IfMatch:       aws.String(condQuote(etag)),
	})
	if err != nil {
		switch {
		case condIsConflict(err):
			err = fmt.Errorf("%w (%s)", storage.ErrPreconditionFailed, condCode(err))
		case isNotFound(err):
			err = fmt.Errorf("%w: %w", storage.ErrPreconditionFailed, storage.ErrNotExist)
		}
		return storage.ObjectInfo{}, fmt.Errorf("replace %s in %s: %w", key, s, err)
	}
	return storage.ObjectInfo{
		Key:     key,
		Size:    int64(len(data)),
		ModTime: time.Now(),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// GetWithInfo reads a small object (at most 1 MiB) and returns its bytes
// together with the size, modification time and ETag of that same version,
// from one GetObject. Callers that Replace what they read need the ETag of
// the version they decided on; Stat followed by Get cannot promise that.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, storage.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return nil, storage.ObjectInfo{}, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.keyPrefix + key),
	})
	if err != nil {
		return nil, storage.ObjectInfo{}, fmt.Errorf("get %s from %s: %w", key, s, mapNotFound(err))
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, condMaxSmallObject+1))
	if err != nil {
		return nil, storage.ObjectInfo{}, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	if len(data) > condMaxSmallObject {
		return nil, storage.ObjectInfo{}, fmt.Errorf("get %s from %s: object larger than %d bytes", key, s, condMaxSmallObject)
	}
	return data, storage.ObjectInfo{
		Key:     key,
		Size:    int64(len(data)),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// ProbeConditionalWrites checks that the server honours conditional writes,
// which leases (HA mode) rely on: it creates a probe object under
// _coffer/probe/ (layout.ConditionalProbe), checks that a second
// create-only write fails with storage.ErrExist, that Replace with a wrong
// ETag fails with storage.ErrPreconditionFailed and with the right ETag
// succeeds, then deletes the probe. A server that ignores or rejects the conditions gives
// an error saying so; other failures (network, permissions) are returned as
// they are.
func (s *Store) ProbeConditionalWrites(ctx context.Context) (err error) {
	var b [8]byte
	rand.Read(b[:])
	key := layout.ConditionalProbe(hex.EncodeToString(b[:]))
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("%s does not honour conditional writes (If-None-Match/If-Match); HA mode needs them: %s",
			s, fmt.Sprintf(format, args...))
	}
	step := func(what string, err error) error {
		if condIsRejected(err) {
			return unsupported("%s: %v", what, err)
		}
		return fmt.Errorf("probe conditional writes on %s: %s: %w", s, what, err)
	}

	first, err := s.Create(ctx, key, strings.NewReader("coffer conditional write probe 1"))
	if err != nil {
		return step("create-only write of a new key", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := s.Delete(dctx, key); derr != nil && err == nil {
			err = fmt.Errorf("probe conditional writes on %s: remove probe: %w", s, derr)
		}
	}()

	_, err = s.Create(ctx, key, strings.NewReader("coffer conditional write probe 2"))
	switch {
	case err == nil:
		return unsupported("a second create-only write (If-None-Match: *) of %s succeeded", key)
	case !errors.Is(err, storage.ErrExist):
		return step("second create-only write", err)
	}

	rand.Read(b[:])
	wrong := hex.EncodeToString(b[:]) + hex.EncodeToString(b[:])
	_, err = s.Replace(ctx, key, []byte("coffer conditional write probe 3"), wrong)
	switch {
	case err == nil:
		return unsupported("a write of %s with If-Match on a wrong ETag succeeded", key)
	case !errors.Is(err, storage.ErrPreconditionFailed):
		return step("write with If-Match on a wrong ETag", err)
	}

	if first.ETag == "" {
		return unsupported("no ETag returned for %s", key)
	}
	if _, err = s.Replace(ctx, key, []byte("coffer conditional write probe 4"), first.ETag); err != nil {
		if errors.Is(err, storage.ErrPreconditionFailed) {
			return unsupported("a write of %s with If-Match on its current ETag failed: %v", key, err)
		}
		return step("write with If-Match on the current ETag", err)
	}
	return nil
}

// condQuote returns etag in the double quotes HTTP entity tags carry.
func condQuote(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`) {
		return etag
	}
	return `"` + etag + `"`
}

// condIsConflict reports whether err says a conditional write lost: 412
// Precondition Failed, or 409 ConditionalRequestConflict (S3's answer when
// another write of the key raced this one).
func condIsConflict(err error) bool {
	return isPreconditionFailed(err) || httpStatus(err) == 409
}

// condIsRejected reports whether err says the server does not implement
// the conditional headers at all.
func condIsRejected(err error) bool {
	switch condCode(err) {
	case "NotImplemented", "InvalidArgument", "InvalidRequest":
		return true
	}
	switch httpStatus(err) {
	case 400, 501:
		return true
	}
	return false
}

func condCode(err error) string {
	if c := errorCode(err); c != "" {
		return c
	}
	if st := httpStatus(err); st != 0 {
		return fmt.Sprintf("HTTP %d", st)
	}
	return "unknown"
}
