package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/coffer-backup/coffer/storage"
)

// Defaults for Options.
const (
	// Memory per upload is at most max(Concurrency, 2) x PartSize: 10 MiB
	// with these defaults. Parts grow after every 1,000 (see partSizeFor), so the largest
	// object is 4.8 TiB with the default PartSize (S3's limit: 5 TiB).
	DefaultPartSize    = 5 << 20
	DefaultConcurrency = 2
	DefaultRegion      = "us-east-1"

	minPartSize = 5 << 20 // S3's minimum for every part but the last
	maxPartSize = 5 << 30

	// abortTimeout bounds the clean-up after a failed upload; it runs on a
	// context detached from the caller's, which may be cancelled already.
	abortTimeout = time.Minute
	// responseHeaderTimeout bounds the wait for a response once a request
	// has been sent.
	responseHeaderTimeout = 2 * time.Minute
)

// Options configure a Store.
type Options struct {
	// Endpoint is the S3 server's base URL, e.g. "http://127.0.0.1:9000";
	// empty means AWS. Without a scheme, https is assumed.
	Endpoint string
	// Region defaults to the SDK's configuration, then to "us-east-1".
	Region string
	// Bucket is required.
	Bucket string
	// Prefix is prepended, with a "/", to every key. Leading and trailing
	// slashes are ignored.
	Prefix string
	// PathStyle addresses the bucket as a path (endpoint/bucket/key), as
	// MinIO and most S3-compatible servers need.
	PathStyle bool
	// Static credentials. When AccessKeyID and SecretAccessKey are empty the
	// SDK's default chain (environment, shared files, IMDS, ...) is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PartSize is the size of a multipart upload's first 1,000 parts in
	// bytes (default and minimum 5 MiB; it doubles every 1,000 parts);
	// Concurrency the number of parts in flight (default 2).
	PartSize    int64
	Concurrency int
	// LockMode is the Object Lock mode every new object gets: "governance",
	// "compliance", or "" for none. Objects under _coffer/ (leases, drill
	// evidence: layout.Mutable) are never locked, except the audit trail
	// under _coffer/audit/, which is written once and locked like backups. The
	// bucket must have Object Lock enabled (see EnsureBucketWith).
	LockMode string
	// LockFor is how long each new object is retained from the moment it is
	// written. It is required with LockMode and must be empty without it.
	LockFor time.Duration
	// CAFile is a PEM file of CA certificates trusted for the endpoint in
	// addition to the system roots and $AWS_CA_BUNDLE. Whatever it holds,
	// certificates are always verified and TLS is 1.2 or newer; plain
	// http:// endpoints are allowed here (the config package decides
	// whether one may be used).
	CAFile string
}

// Store is a storage.Store, storage.Creator, storage.Disposer,
// storage.UploadLister and storage.Clock on one bucket and prefix. It is safe for concurrent
// use.
type Store struct {
	client      *s3.Client
	bucket      string
	keyPrefix   string // "" or Prefix + "/"
	region      string
	name        string // for String
	partSize    int64  // of the first parts; see partSizeFor
	concurrency int    // parts in flight per upload
	// partsPerStep is how many parts go up at one size before it doubles;
	// the constant partsPerStep except in tests.
	partsPerStep int32
	lockMode     types.ObjectLockMode // "" when objects are not locked
	lockFor      time.Duration
}

var (
	_ storage.Store        = (*Store)(nil)
	_ storage.Creator      = (*Store)(nil)
	_ storage.Disposer     = (*Store)(nil)
	_ storage.UploadLister = (*Store)(nil)
)

// New returns a Store for opts. It does not contact the server.
func New(ctx context.Context, opts Options) (*Store, error) {
	return newStore(ctx, opts)
}

// newStore is New with extra S3 client options, which tests use to make
// the client behave as it does against AWS over TLS.
func newStore(ctx context.Context, opts Options, clientOpts ...func(*s3.Options)) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3 store: bucket is required")
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < minPartSize || opts.PartSize > maxPartSize {
		return nil, fmt.Errorf("s3 store: part size %d out of range [%d, %d]", opts.PartSize, minPartSize, int64(maxPartSize))
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Concurrency < 1 {
		return nil, fmt.Errorf("s3 store: concurrency %d must be at least 1", opts.Concurrency)
	}
	lockMode, err := parseLockMode(opts.LockMode, opts.LockFor)
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		return nil, errors.New("s3 store: give both access key ID and secret access key, or neither")
	}
	endpoint := opts.Endpoint
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	var host string
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("s3 store: invalid endpoint %q", opts.Endpoint)
		}
		if u.User != nil {
			return nil, errors.New("s3 store: endpoint must not contain credentials")
		}
		host = u.Host
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion(DefaultRegion),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	httpClient, err := newHTTPClient(opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	loadOpts = append(loadOpts, config.WithHTTPClient(httpClient))
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}}, clientOpts...)...)

	prefix := strings.Trim(opts.Prefix, "/")
	s := &Store{
		client:       client,
		bucket:       opts.Bucket,
		region:       cfg.Region,
		partSize:     opts.PartSize,
		concurrency:  opts.Concurrency,
		partsPerStep: partsPerStep,
		lockMode:     lockMode,
		lockFor:      opts.LockFor,
	}
	s.name = "s3://" + opts.Bucket
	if prefix != "" {
		s.keyPrefix = prefix + "/"
		s.name += "/" + prefix
	}
	if host != "" {
		s.name += " (" + host + ")"
	}
	return s, nil
}

// String returns "s3://bucket/prefix", followed by the endpoint's host in
// parentheses when the endpoint is not AWS's.
func (s *Store) String() string { return s.name }

// Put streams r to key, replacing any previous object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	info, err := s.upload(ctx, key, r, false)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s to %s: %w", key, s, err)
	}
	return info, nil
}

// Create is Put with If-None-Match: *; it returns storage.ErrExist when key
// already exists.
func (s *Store) Create(ctx context.Context, key string, r io.Reader) (storage.ObjectInfo, error) {
	info, err := s.upload(ctx, key, r, true)
	if err != nil {
		if isPreconditionFailed(err) {
			err = storage.ErrExist
		}
		return storage.ObjectInfo{}, fmt.Errorf("create %s in %s: %w", key, s, err)
	}
	return info, nil
}

func (s *Store) upload(ctx context.Context, key string, r io.Reader, createOnly bool) (storage.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	full := s.keyPrefix + key
	body := &countingReader{ctx: ctx, r: r}
	if pr, ok := r.(storage.PartReader); ok {
		body.parts = pr
	}
	req := putRequest{bucket: s.bucket, key: full, ifNoneMatch: createOnly}
	started := time.Now()
	s.applyLock(&req, key, started)
	etag, err := s.send(ctx, req, body)
	if err != nil {
		s.cleanupFailedUpload(ctx, full, err, started)
		return storage.ObjectInfo{}, err
	}
	info := storage.ObjectInfo{
		Key:     key,
		Size:    body.n.Load(),
		ModTime: time.Now(),
		ETag:    strings.Trim(etag, `"`),
	}
	// Check what the server holds against what we sent.
	if st, err := s.stat(ctx, full); err == nil {
		if st.Size != info.Size {
			return storage.ObjectInfo{}, fmt.Errorf("server holds %d bytes after an upload of %d", st.Size, info.Size)
		}
		info.ModTime = st.ModTime
		if st.ETag != "" {
			info.ETag = st.ETag
		}
	}
	return info, nil
}

// cleanupFailedUpload aborts the multipart upload behind a failed send, if
// any, on a context detached from the caller's (which may be cancelled
// already), so a cancelled upload is still aborted.
func (s *Store) cleanupFailedUpload(ctx context.Context, full string, uploadErr error, started time.Time) {
	var mpe *multipartError
	if !errors.As(uploadErr, &mpe) {
		return // a single PutObject, or a read that failed before any upload began
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if mpe.uploadID != "" {
		s.abort(actx, full, mpe.uploadID)
		return
	}
	// CreateMultipartUpload may have succeeded on the server while the
	// client saw an error (e.g. cancelled mid-response): abort uploads of
	// this exact key started since this Put began.
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(full),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(actx)
		if err != nil {
			return
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) == full && !aws.ToTime(u.Initiated).Before(started.Add(-time.Minute)) {
				s.abort(actx, full, aws.ToString(u.UploadId))
			}
		}
	}
}

func (s *Store) abort(ctx context.Context, full, uploadID string) {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(full),
		UploadId: aws.String(uploadID),
	})
	_ = err // NoSuchUpload: already aborted; anything else: nothing better to do
}

// Get returns the object's bytes. The caller must close them.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.keyPrefix + key),
	})
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s, mapNotFound(err))
	}
	return out.Body, nil
}

// Stat returns the object's size, modification time and ETag.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s in %s: %w", key, s, err)
	}
	info, err := s.stat(ctx, s.keyPrefix+key)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s in %s: %w", key, s, mapNotFound(err))
	}
	info.Key = key
	return info, nil
}

func (s *Store) stat(ctx context.Context, full string) (storage.ObjectInfo, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(full),
	})
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{
		Key:     strings.TrimPrefix(full, s.keyPrefix),
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// List yields every object whose key starts with prefix, in lexical key
// order, paging through ListObjectsV2.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		if strings.HasPrefix(prefix, "/") {
			yield(storage.ObjectInfo{}, fmt.Errorf("list %s in %s: invalid prefix: starts with /", prefix, s))
			return
		}
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.keyPrefix + prefix),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(storage.ObjectInfo{}, fmt.Errorf("list %s in %s: %w", prefix, s, err))
				return
			}
			for _, o := range page.Contents {
				info := storage.ObjectInfo{
					Key:     strings.TrimPrefix(aws.ToString(o.Key), s.keyPrefix),
					Size:    aws.ToInt64(o.Size),
					ModTime: aws.ToTime(o.LastModified),
					ETag:    strings.Trim(aws.ToString(o.ETag), `"`),
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// Delete removes the object under key. A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.keyPrefix + key),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	return nil
}

// RemoveBucket deletes every object version, delete marker and in-progress
// upload in the bucket (not only under the prefix), then the bucket itself.
// It bypasses governance-mode Object Lock retention; objects under
// compliance-mode retention cannot be removed, and neither can their bucket.
// It is for tests and benchmarks that made the bucket with EnsureBucket or
// EnsureBucketWith; Coffer never calls it.
func (s *Store) RemoveBucket(ctx context.Context) error {
	bucket := aws.String(s.bucket)
	versions := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{Bucket: bucket})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("remove bucket %s: list: %w", s.bucket, err)
		}
		for _, v := range listedVersions(page) {
			if err := s.deleteVersion(ctx, v, true); err != nil {
				return fmt.Errorf("remove bucket %s: %w", s.bucket, err)
			}
		}
	}
	for u, err := range s.uploads(ctx, "") {
		if err != nil {
			return fmt.Errorf("remove bucket %s: %w", s.bucket, err)
		}
		if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String(u.Key), UploadId: aws.String(u.ID)}); err != nil && errorCode(err) != "NoSuchUpload" {
			return fmt.Errorf("remove bucket %s: %w", s.bucket, err)
		}
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket}); err != nil {
		return fmt.Errorf("remove bucket %s: %w", s.bucket, err)
	}
	return nil
}

// ListMultipartUploads returns the keys (without the store's prefix) of the
// multipart uploads in progress under the store's prefix. Tests use it to
// prove that failed uploads were aborted; Uploads gives more detail.
func (s *Store) ListMultipartUploads(ctx context.Context) ([]string, error) {
	var keys []string
	for u, err := range s.Uploads(ctx, "") {
		if err != nil {
			return nil, err
		}
		keys = append(keys, u.Key)
	}
	return keys, nil
}

func validateKey(key string) error {
	switch {
	case key == "":
		return errors.New("invalid key: empty")
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("invalid key %q: absolute (starts with /)", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("invalid key %q: empty path segment (// or trailing /)", key)
		case ".", "..":
			return fmt.Errorf("invalid key %q: %q segment", key, seg)
		}
	}
	return nil
}

// mapNotFound turns the S3 errors for a missing key into storage.ErrNotExist.
func mapNotFound(err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w (%s)", storage.ErrNotExist, errorCode(err))
	}
	return err
}

// isNotFound reports whether err says the key does not exist. A missing
// bucket is a configuration error, not a missing key.
func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

func isPreconditionFailed(err error) bool {
	// 409 ConditionalRequestConflict: another conditional write of the key
	// is in flight; it, not this one, wins.
	if c := errorCode(err); c == "PreconditionFailed" || c == "ConditionalRequestConflict" {
		return true
	}
	return httpStatus(err) == 412
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status code of a response error; 0 when err
// carries none.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// countingReader counts bytes read and fails reads once ctx is done.
// parts is r when r can hand out shared part buffers.
type countingReader struct {
	ctx   context.Context
	r     io.Reader
	parts storage.PartReader
	n     atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// minTLSVersion is the oldest TLS version a Store speaks.
const minTLSVersion = tls.VersionTLS12

// envCABundle names the CA bundle file the AWS SDKs and CLI trust.
const envCABundle = "AWS_CA_BUNDLE"

// newHTTPClient returns the SDK's default HTTP client (its dial, TLS
// handshake and idle timeouts and its connection pool) with TLS 1.2 or
// newer and certificates always verified. With neither caFile nor
// $AWS_CA_BUNDLE set it trusts the system's roots as Go finds them; with
// either, the system roots plus their certificates: a private CA is added
// to, not substituted for, the public ones.
//
// The SDK stays able to add $AWS_CA_BUNDLE (or a shared config file's
// ca_bundle) itself, because the client remains an *awshttp.BuildableClient.
func newHTTPClient(caFile string) (*awshttp.BuildableClient, error) {
	tlsConfig := &tls.Config{MinVersion: minTLSVersion}
	var files []string
	if f := os.Getenv(envCABundle); f != "" {
		files = append(files, f)
	}
	if caFile != "" {
		files = append(files, caFile)
	}
	if len(files) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool() // no system roots on this host: trust the files alone
		}
		for _, f := range files {
			if err := appendCAFile(pool, f); err != nil {
				return nil, err
			}
		}
		tlsConfig.RootCAs = pool
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = tlsConfig
		// A server that takes the request and never answers (a black-holed
		// path) must not hang a command forever. The clock starts after
		// the request body is sent, so large parts are not affected.
		tr.ResponseHeaderTimeout = responseHeaderTimeout
	}), nil
}

// appendCAFile adds the PEM certificates in file to pool.
func appendCAFile(pool *x509.CertPool, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("read CA bundle %s: %w", file, err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("CA bundle %s holds no PEM certificate", file)
	}
	return nil
}
