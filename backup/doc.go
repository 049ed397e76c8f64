// Package backup runs one backup: it reads a database dump once and streams
// it through SHA-256, zstd and age to every destination of a job at the
// same time, then commits a manifest to each destination that stored the
// payload.
//
// Guarantees:
//   - Memory is bounded: no stage holds the whole dump, nothing is spooled
//     to disk. Each destination has a small bounded queue; a slow one
//     back-pressures the dump, a failed one is dropped and the rest go on.
//   - Payload first, manifest last. A manifest is written only after the
//     dump tool exited 0, every encoder flushed, and the destination
//     confirmed the whole payload with the expected size. Otherwise every
//     upload is aborted and no manifest is written anywhere.
//   - The result is OK (all destinations), Partial (some) or Failed (none);
//     partial is never reported as success.
package backup
