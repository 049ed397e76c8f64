// Package sign makes and checks Ed25519 signatures over bytes: the
// signatures Coffer puts on manifests (and drill reports), so that a
// reader can tell what the backup side wrote from what anyone with write
// access to a bucket could put there.
//
// Guarantees:
//   - A Signature verifies only with the public key of the Signer that made
//     it, over exactly the bytes it was made over: one changed byte, or any
//     other key, fails. Verification never re-encodes anything.
//   - Verify says why a signature fails and names the key id involved:
//     signed by a key that is not trusted, or a bad signature by a trusted
//     key. A key id is a hint for messages, never a reason to trust.
//   - Private key files are created with mode 0600 and refused when group
//     or others may read them; errors name the file, never its contents.
//
// What a signature does not say: that the signed backup is complete,
// restorable or the newest one. Those are the manifest's checks, the
// payload's hashes and the sequence number's job.
package sign
