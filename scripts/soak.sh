#!/usr/bin/env bash
# soak.sh: the chaos soak. A real `coffer run` (built with -tags soak, so
# the soak can jump its clock) backs up an exec job every few seconds to
# the two test MinIO servers through fault-injecting proxies, while faults
# drawn from a seed hit it (lost answers, 503s, resets mid-part, black
# holes, clock jumps, planted/forged/edited objects, kill -9, a full state
# disk); after every cycle an oracle checks from outside Coffer that no
# backup inside keep_within is lost (I1-I5, see internal/soak). It prints a
# table and fails on any violation.
#
#   scripts/soak.sh                         200 cycles, random seed (printed)
#   SOAK_CYCLES=30 scripts/soak.sh          the short form CI runs
#   SOAK_SEED=1234 SOAK_CYCLES=30 scripts/soak.sh   replay a run's faults
#
# Environment: SOAK_SEED (default random), SOAK_CYCLES (default 200),
# SOAK_PERIOD (seconds between slots, default 5), SOAK_KEEP=1 keeps the
# run's directory (daemon logs, soak.log, configs; kept anyway on failure),
# SOAK_QUIET=1 prints only the table and violations. Needs root for the
# state tmpfs (without it the full-disk fault is skipped, and said so).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# The Go that builds Coffer (go.mod's toolchain line; see the Makefile).
export GOTOOLCHAIN=go1.27.3
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH=/usr/local/go/bin:$PATH
fi

scripts/services.sh
# shellcheck source=/dev/null
. .coffer-test/env

if [ -z "${SOAK_SEED:-}" ]; then
	SOAK_SEED=$(od -An -N7 -tu8 /dev/urandom | tr -d ' ')
fi
export SOAK_SEED SOAK_CYCLES=${SOAK_CYCLES:-200}
echo "soak.sh: seed $SOAK_SEED, $SOAK_CYCLES cycles (replay: SOAK_SEED=$SOAK_SEED SOAK_CYCLES=$SOAK_CYCLES scripts/soak.sh)"

bin=$(mktemp -d "${TMPDIR:-/tmp}/coffer-soak-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -tags soak -o "$bin/coffer" ./cmd/coffer
export COFFER_SOAK_BIN="$bin/coffer"

# One slot every SOAK_PERIOD seconds plus start-up: bound the run.
timeout=$((SOAK_CYCLES * ${SOAK_PERIOD:-5} * 3 + 600))s
status=0
go test -tags soak -count=1 -v -timeout "$timeout" -run '^TestSoak$' ./internal/soak || status=$?
if [ "$status" != 0 ]; then
	echo "soak.sh: FAILED (seed $SOAK_SEED; replay: SOAK_SEED=$SOAK_SEED SOAK_CYCLES=$SOAK_CYCLES scripts/soak.sh)" >&2
fi
exit "$status"
