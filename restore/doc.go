// Package restore reads backups back: it chooses a backup from the job's
// verified catalog (manifest.ReadCatalog), streams the payload through age
// decryption, zstd decoding and SHA-256 into a loader, and falls back to
// the next destination holding the backup when one is unreachable or its
// copy is bad.
//
// Guarantees:
//   - A backup is chosen (by id, or the newest) only where its manifest
//     verifies and its payload is whole; a planted, forged or damaged
//     manifest key is never chosen or tried, and is reported (Report and
//     Check list it as untrusted, with the reason).
//   - Nothing from a bucket is trusted unchecked: the manifest's signature
//     must verify with a trusted key (unless the caller skips signatures,
//     and then each such manifest is reported), it must decode and
//     describe the requested backup; the payload's size, age header
//     hash, every age chunk, the zstd framing, and the plaintext and
//     ciphertext SHA-256 are checked against it.
//   - A loader never sees a clean end of stream for a payload that fails a
//     check: the final checks run before EOF is passed on, so a corrupt
//     copy ends in a read error, and the loader fails.
//   - A wrong identity is reported with the recipients the backup was
//     encrypted to, and is not retried on other destinations.
//   - The target is prepared (and, forced, emptied or staged) only after a
//     copy's manifest signature, payload size, age header and identity
//     checked out; a staging loader (snapshot.Staged) is committed only
//     after a Load that passed every check, and aborted otherwise.
package restore
