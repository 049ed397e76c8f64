// Package chaos is a fault-injecting HTTP proxy for S3 servers, used by the
// chaos soak (internal/soak) to make the network between Coffer and a real
// MinIO misbehave in the ways that break naive commit logic:
//
//   - Drop: the request is forwarded, the server answers (and so commits),
//     and the client connection is then reset without the answer: "was it
//     written?" can only be decided by reading back.
//   - ServerError: a 503 SlowDown, without forwarding.
//   - Reset: the request body is forwarded up to a byte offset, then both
//     connections are reset: a connection cut in the middle of a part.
//   - Blackhole: the request is accepted and never answered until the
//     black hole ends, when its connection is reset.
//
// Faults are chosen per request by Rules (a request class, an ordinal or a
// probability) drawn from a seeded generator in arrival order, so a run
// with the same seed and the same request sequence injects the same
// faults; a whole destination can also be black-holed (SetBlackhole).
//
// The proxy preserves the Host header the client sent, because S3 servers
// verify SigV4 signatures against it. It is test code: it MUST NOT be
// linked into the coffer binary.
package chaos
