// Package fs is a storage.Store on a local directory.
//
// Guarantees:
//   - Put and Create write to a temporary file in the destination directory,
//     fsync it, and only then make it visible (rename for Put, link for
//     Create), then fsync the directory. A reader error or a cancelled
//     context removes the temporary file: nothing becomes visible under the
//     key and a previous object under the key is left untouched.
//   - Create is atomic create-only: of several concurrent Creates of one key
//     exactly one succeeds; the others get storage.ErrExist.
//   - Temporary files (names starting with ".coffer-tmp-") are never listed,
//     read or stat'ed as objects, and keys may not use that name.
//   - A crash can leave temporary files behind; Uploads lists them as
//     unfinished uploads (Initiated = modification time) and AbortUpload
//     removes one, so package sweep clears them as it does S3's.
//   - Directories are created 0700 and files 0600.
//   - List walks the tree in lexical key order (byte-wise, as S3 does).
//   - Keys are validated: non-empty, "/"-separated, no leading or trailing
//     "/", no empty, "." or ".." segments, no NUL or backslash. A key can
//     never name a file outside the root.
//
// A context cancelled while Put blocks inside r.Read cannot interrupt that
// Read; the cancellation is noticed on the next Read. Callers feeding Put
// from an io.Pipe should close the pipe with an error to abort promptly.
package fs
