// Package seal encrypts and decrypts backup payloads with age and manages
// the key files that go with it.
//
// Guarantees:
//   - Encrypt produces a standard age file that the stock `age` CLI decrypts.
//     Its Close MUST be called and checked: it writes the final chunk, and an
//     unchecked Close is a truncated backup.
//   - Decrypt authenticates every 64 KiB chunk as it is read; a read error at
//     any point (including after earlier chunks were returned) means the
//     whole payload is bad. Callers MUST treat any read error as failure.
//   - Identity files readable by group or others are refused.
//
// age recipients do not authenticate the sender: anyone holding a public key
// can produce a valid payload. Authenticity comes from the manifest, which
// pins the payload's SHA-256 and the hash of its age header.
package seal
