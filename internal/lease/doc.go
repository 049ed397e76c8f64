// Package lease lets several Coffer daemons with the same configuration (an
// HA pair) agree which one runs a job: before running it, a daemon takes a
// lease object in the job's first destination, built on the store's
// conditional writes (storage.Creator and storage.Swapper; on S3,
// If-None-Match: * and If-Match).
//
// Guarantees:
//   - Of any number of concurrent Acquire calls on one key, at most one
//     succeeds; the others get ErrHeld (or another error), never a lease.
//   - Every write after the first is conditional on the ETag this Lease last
//     wrote, so a holder whose lease was taken over can neither renew nor
//     release it: Renew and Release return ErrLost and change nothing.
//   - A lease is free when its holder released it, or when it expired by
//     more than a quarter of its ttl on the reader's clock.
//   - A reader never believes an expiry later than ttl after it first saw
//     that version (ETag) of the lease object: a far-future Expires (a
//     holder whose clock runs fast, or an object planted by someone with
//     write access to the bucket) holds other daemons off for one ttl, not
//     until that date. Such an expiry is reported as ErrImplausibleExpiry
//     (wrapped by the ErrHeld error, or by Lease.Implausible after a
//     takeover) so the caller can warn.
//
// Clocks: expiry times are written by the holder's clock and read by other
// daemons' clocks. The quarter-ttl grace assumes the daemons' clocks differ
// by less than that (NTP keeps them within milliseconds); with a larger
// skew two daemons may both believe they hold a lease. A holder that
// renews writes a new version each time, so a live holder with a fast
// clock keeps its lease (and is reported); one that stopped renewing is
// taken over ttl + ttl/4 after its last renewal was first seen. Keep reports a lease
// as lost no later than its expiry on the holder's own clock, so a holder
// that stops work on onLost has stopped before another daemon can take over.
//
// The lease only decides who starts a job; it does not fence writes made by
// a holder that kept working after losing it.
package lease
