// Package soak is Coffer's chaos soak: a seeded, replayable run of a real
// `coffer run` daemon against the two test MinIO servers behind
// fault-injecting proxies (internal/chaos), with an oracle that checks
// from outside Coffer, after every cycle, that no backup inside
// keep_within is lost and that no schedule slot passes unreported.
//
// The soak is a test behind the build tag "soak"; run it with
// scripts/soak.sh (SOAK_SEED, SOAK_CYCLES). This file only documents the
// package: without the tag there is nothing to build.
package soak
