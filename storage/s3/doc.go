// Package s3 is a storage.Store on an S3 bucket (AWS or an S3-compatible
// server such as MinIO), built on aws-sdk-go-v2, with its own streaming
// multipart uploader (upload.go says why).
//
// Guarantees:
//   - Put streams: it never needs the object's size and holds at most
//     max(Concurrency, 2) part buffers (one is read while the others go
//     up), allocated only when the ones it has are all busy. Objects smaller than
//     PartSize go up in one PutObject; larger ones as a multipart upload
//     whose parts are PartSize for the first 1,000 and double every 1,000
//     after (5 MiB parts: flat memory up to 4.9 GiB, 10 MiB parts up to
//     14.6 GiB, ...), so 10,000 parts hold 4.8 TiB (S3's limit: 5 TiB).
//   - A reader error or a cancelled context makes Put return an error that
//     wraps it, leaves nothing visible under the key (a previous object stays
//     intact) and aborts the multipart upload, using a fresh context so that
//     cancellation cannot prevent the abort. ListMultipartUploads lets tests
//     prove that nothing was left behind.
//   - A CompleteMultipartUpload answered with 200 and an error body is a
//     failure (the SDK turns it into a 5xx error) and the upload is aborted.
//   - Create sends If-None-Match: * and maps 412 Precondition Failed (and
//     409 ConditionalRequestConflict) to storage.ErrExist: of concurrent
//     Creates of one key at most one wins. Replace sends If-Match on an
//     ETag (storage.Swapper, for leases); ProbeConditionalWrites checks at
//     start-up that the server honours both.
//   - With LockMode and LockFor, every upload outside _coffer/, and every
//     upload under _coffer/audit/ (the shipped audit trail, written once),
//     carries an Object Lock retention date and a CRC32 checksum (S3
//     requires an integrity checksum with Object Lock).
//   - Dispose removes every version and delete marker of a key (secure
//     disposal on versioned buckets) and returns storage.ErrLocked when
//     Object Lock protects a version. Uploads/AbortUpload list and abort
//     unfinished multipart uploads, for the leftover sweep.
//   - Get, Stat map NoSuchKey/NotFound to storage.ErrNotExist; deleting a
//     missing key is not an error; List pages through every result.
//   - Request checksums are only sent, and response checksums only checked,
//     when an operation requires it, so S3-compatible servers accept uploads.
//   - Keys are stored under Prefix+"/"; ObjectInfo.Key never includes it.
//   - String never contains credentials.
//   - TLS is always verified, minimum TLS 1.2; Options.CAFile and
//     AWS_CA_BUNDLE add certificates to the system roots.
//
// The AWS SDK's configuration chain is used (environment, shared config
// files, AWS_CA_BUNDLE, ...), with static credentials taking precedence when
// given.
package s3
