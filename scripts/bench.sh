#!/usr/bin/env bash
# Benchmark: Coffer to two MinIOs vs. the plain shell pipeline to one.
#
#   scripts/bench.sh            # ~1 GB database, then doubled to ~2 GB
#   BENCH_ROWS=400000 scripts/bench.sh   # quicker, smaller
#   BENCH_PARTS="restore" scripts/bench.sh   # only the restore part
#
# Three parts, all by default (BENCH_PARTS="backup restore memory"):
#   backup   this header's (a), (a1), (b) below
#   restore  scripts/bench/restore.sh: stock age|zstd|pg_restore against
#            coffer restore --jobs 1, --jobs N and a drill, on a 40-table and
#            a 2-table database
#   memory   scripts/bench/memory.sh: peak RSS and throughput of backups of
#            1 GB and 10 GB exec dumps to two destinations (BENCH_BASELINE=REV
#            alternates the coffer of an earlier revision, as "before")
#
# For each size it times, in the same run on the same data, each variant
# BENCH_RUNS times (default 5, alternating; min and median shown):
#   (a)  coffer backup  -> primary AND offsite MinIO (peak RSS via /usr/bin/time)
#   (a1) coffer backup  -> primary only (the same work as the shell pipeline)
#   (b)  pg_dump -Fc -Z0 | zstd -3 -T2 | age -r KEY | upload to ONE MinIO
# and prints wall times, the ratio (a)/(b), Coffer's peak RSS, and where
# the CPU went: each variant's process tree (pg_dump included) and the
# MinIO servers, which share this machine's cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# The Go that builds Coffer (go.mod's toolchain line; see the Makefile).
export GOTOOLCHAIN=go1.27.3
scripts/services.sh >/dev/null
# shellcheck disable=SC1091
source .coffer-test/env

rows=${BENCH_ROWS:-3600000}   # ~1 GB of pg_dump output
db=coffer_bench
work=$(mktemp -d)
tls_pids=()
stop_tls_minio() {
  local p
  for p in "${tls_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${tls_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
# Until the buckets exist, a failure stops the servers started so far
# (their ports are fixed) and removes the work directory.
trap 'stop_tls_minio; rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time missing (apt-get install time)"; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 missing (it computes the min and median)"; exit 1; }

go build -o "$work/coffer" ./cmd/coffer
go build -o "$work/benchtool" ./scripts/benchtool
"$work/coffer" keygen -o "$work/key.txt" --signing-key "$work/signing.key" > "$work/keys"
recipient=$(sed -n 1p "$work/keys")
signing_pub=$(sed -n 2p "$work/keys")
export AWS_ACCESS_KEY_ID=$COFFER_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$COFFER_TEST_S3_SECRET_KEY

# Transport. By default (BENCH_TLS=1) the benchmark starts two MinIO servers
# of its own that speak HTTPS with a self-signed certificate, as production
# endpoints do: over TLS the SDK sends the parts unsigned (TLS protects them)
# and MinIO does not hash them again. BENCH_TLS=0 uses the test suite's
# plain-HTTP servers (insecure_http), where every part is SHA-256-signed by
# the client and checked by the server.
start_tls_minio() { # NAME PORT
  mkdir -p "$work/minio-$1"
  MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off \
    "$COFFER_TEST_MINIO_BIN" server --quiet --address "127.0.0.1:$2" --console-address "127.0.0.1:$(($2 + 1))" \
    --certs-dir "$work/certs" "$work/minio-$1" </dev/null >"$work/minio-$1.log" 2>&1 &
  tls_pids+=($!)
  local i
  for ((i = 0; i < 120; i++)); do
    curl -fsS --cacert "$work/certs/ca.crt" "https://127.0.0.1:$2/minio/health/live" >/dev/null 2>&1 && return
    sleep 0.5
  done
  cat "$work/minio-$1.log" >&2
  echo "bench: MinIO $1 (TLS) did not start on 127.0.0.1:$2" >&2
  exit 1
}
if [ "${BENCH_TLS:-1}" = 1 ]; then
  "$work/benchtool" mkcert "$work/certs"
  export AWS_CA_BUNDLE=$work/certs/ca.crt
  start_tls_minio primary "${BENCH_TLS_PORT:-9310}"
  start_tls_minio offsite "$((${BENCH_TLS_PORT:-9310} + 10))"
  s3_primary=https://127.0.0.1:${BENCH_TLS_PORT:-9310} s3_offsite=https://127.0.0.1:$((${BENCH_TLS_PORT:-9310} + 10))
  transport="https (own MinIO servers, self-signed certificate)"
  dest_opts="ca_file: $work/certs/ca.crt"
  minio_pids=("${tls_pids[@]}")
else
  s3_primary=$COFFER_TEST_S3_PRIMARY s3_offsite=$COFFER_TEST_S3_OFFSITE
  transport="plain http (insecure_http; the test suite's MinIO servers)"
  dest_opts="insecure_http: true"
  minio_pids=("$(cat .coffer-test/minio-primary.pid)" "$(cat .coffer-test/minio-offsite.pid)")
fi

suffix=$(date +%s)
"$work/benchtool" mkbucket "$s3_primary" "bench-$suffix"
"$work/benchtool" mkbucket "$s3_offsite" "bench-$suffix"
"$work/benchtool" mkbucket "$s3_primary" "bench-shell-$suffix"
cleanup() { # the benchmark's buckets hold gigabytes: remove them
  "$work/benchtool" rmbucket "$s3_primary" "bench-$suffix" || true
  "$work/benchtool" rmbucket "$s3_offsite" "bench-$suffix" || true
  "$work/benchtool" rmbucket "$s3_primary" "bench-shell-$suffix" || true
  stop_tls_minio
  rm -rf "$work"
}
if [ -n "${BENCH_KEEP:-}" ]; then
  echo "bench: keeping $work and buckets bench-$suffix, bench-shell-$suffix"
  trap stop_tls_minio EXIT
else
  trap cleanup EXIT
fi

cat > "$work/coffer.yaml" <<YAML
signing: {key_file: $work/signing.key, public_keys: [$signing_pub]}
recipients: [$recipient]
destinations:
  primary: {type: s3, endpoint: $s3_primary, bucket: bench-$suffix, path_style: true, $dest_opts, access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: "\${AWS_SECRET_ACCESS_KEY}"}
  offsite: {type: s3, endpoint: $s3_offsite, bucket: bench-$suffix, path_style: true, $dest_opts, access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: "\${AWS_SECRET_ACCESS_KEY}"}
jobs:
  bench:
    source: {type: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: $db}
    compression: {level: 3}
  bench-one:
    source: {type: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: $db}
    destinations: [primary]
YAML

psql() { command psql -X -q -h 127.0.0.1 -U postgres "$@"; }
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
add_rows() { # $1 = first id, $2 = count
  psql -d $db -c "
  CREATE TABLE IF NOT EXISTS events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, account int NOT NULL,
    amount numeric(12,2), kind text, note text, attrs jsonb);
  INSERT INTO events SELECT i, timestamptz '2024-01-01' + i * interval '7 seconds', ((i * 7919) % 50000)::int,
    round((random() * 10000)::numeric, 2), (ARRAY['lesson','invoice','refund','login','export'])[1 + (i % 5)::int],
    md5(i::text) || ' ' || repeat(chr(97 + (i % 26)::int), (i % 40)::int) || ' pupil ' || (i % 9973),
    jsonb_build_object('ip', '10.' || (i % 255) || '.' || ((i / 255) % 255) || '.1', 'ok', i % 3 = 0, 'tags', jsonb_build_array((i % 7)::int, md5((i*3)::text)))
  FROM generate_series($1::bigint, $1 + $2 - 1) AS i;"
}

# CPU accounting: the time of a variant's whole process tree (coffer with
# its pg_dump; the shell with pg_dump, zstd, age and the uploader), and
# what each MinIO server spent meanwhile, from /proc (clock ticks).
hz=$(getconf CLK_TCK)
minio_ticks() { local t=0 p; for p in "${minio_pids[@]}"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }

# timed OUT CMD...: runs CMD (stdout discarded, stderr to OUT.err) and
# writes "wall tree_cpu minio_cpu rss_kib" to OUT.
timed() {
  local out=$1 t0 t1 m0 m1; shift
  m0=$(minio_ticks); t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$out.time" "$@" 2>"$out.err" >/dev/null || { cat "$out.err" >&2; exit 1; }
  t1=$(date +%s.%N); m1=$(minio_ticks)
  read -r u sy rss < <(tail -1 "$out.time")
  echo "$(echo "$t1 - $t0" | bc) $(echo "$u + $sy" | bc) $(echo "scale=2; ($m1 - $m0) / $hz" | bc) $rss" > "$out"
}

# The plain pipeline to one destination.
shell_pipeline() {
  pg_dump -h 127.0.0.1 -U postgres --format=custom --compress=0 $db | zstd -3 -T2 -q | "$COFFER_TEST_BIN/age" -r "$recipient" \
    | "$work/benchtool" upload "$s3_primary" "bench-shell-$suffix" "shell-$1.age"
}
export -f shell_pipeline
export db recipient work suffix s3_primary COFFER_TEST_BIN

# stats FILE...: "min median" of the first field (wall) and the medians of
# tree CPU and MinIO CPU over the runs' files.
stats() {
  cat "$@" | python3 -c '
import sys, statistics as st
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
col = lambda i: [r[i] for r in rows]
print("%.2f %.2f %.2f %.2f %d" % (min(col(0)), st.median(col(0)), st.median(col(1)), st.median(col(2)), max(col(3)) // 1024))'
}

measure() { # $1 = label
  # Settle the database first (autovacuum and checkpoints after the bulk
  # insert would otherwise slow whichever run comes first), then alternate
  # the variants BENCH_RUNS times.
  psql -d $db -c "VACUUM (ANALYZE) events" -c "CHECKPOINT"
  local size i runs=${BENCH_RUNS:-5}
  size=$(psql -d $db -Atc "SELECT pg_size_pretty(pg_database_size('$db'))")
  for ((i = 1; i <= runs; i++)); do
    timed "$work/res-b.$i" bash -c "set -o pipefail; shell_pipeline $1-$i"
    timed "$work/res-a.$i" "$work/coffer" backup --config "$work/coffer.yaml" --job bench --log-format json
    timed "$work/res-a1.$i" "$work/coffer" backup --config "$work/coffer.yaml" --job bench-one --log-format json
  done
  cp "$work/res-a.$runs.err" "$work/coffer.log"
  runs_of() { local j; for ((j = 1; j <= runs; j++)); do echo "$work/$1.$j"; done; }
  local dump stored a_min a_med a_cpu a_minio a_rss a1_min a1_med a1_cpu a1_minio b_min b_med b_cpu b_minio
  # shellcheck disable=SC2046 # one path per run, no spaces (mktemp -d)
  read -r a_min a_med a_cpu a_minio a_rss < <(stats $(runs_of res-a))
  # shellcheck disable=SC2046
  read -r a1_min a1_med a1_cpu a1_minio _ < <(stats $(runs_of res-a1))
  # shellcheck disable=SC2046
  read -r b_min b_med b_cpu b_minio _ < <(stats $(runs_of res-b))
  rm -f "$work"/res-*
  dump=$(grep -o '"plain_bytes":[0-9]*' "$work/coffer.log" | tail -1 | cut -d: -f2)
  stored=$(grep -o '"stored_bytes":[0-9]*' "$work/coffer.log" | tail -1 | cut -d: -f2)
  r() { echo "scale=2; $1 / $2" | bc; }
  printf '%-3s db %s, dump %.0f MiB, stored %.0f MiB, %d runs each (min / median wall seconds):\n' "$1" "$size" \
    "$(echo "$dump/1048576" | bc -l)" "$(echo "$stored/1048576" | bc -l)" "$runs"
  printf '    coffer->2 dests %5.2f / %5.2f s | coffer->1 dest %5.2f / %5.2f s | shell->1 dest %5.2f / %5.2f s\n' \
    "$a_min" "$a_med" "$a1_min" "$a1_med" "$b_min" "$b_med"
  printf '    RATIO 2 dests / shell: %s (min) %s (median); 1 dest / shell: %s (min) %s (median) | coffer peak RSS %d MiB\n' \
    "$(r "$a_min" "$b_min")" "$(r "$a_med" "$b_med")" "$(r "$a1_min" "$b_min")" "$(r "$a1_med" "$b_med")" "$a_rss"
  printf '    CPU seconds (median): process tree coffer->2 %s, coffer->1 %s, shell %s (ratio 2 dests / shell %s) | MinIO servers %s, %s, %s\n' \
    "$a_cpu" "$a1_cpu" "$b_cpu" "$(r "$a_cpu" "$b_cpu")" "$a_minio" "$a1_minio" "$b_minio"
}

# shellcheck source=scripts/bench/restore.sh
. "$repo/scripts/bench/restore.sh"
# shellcheck source=scripts/bench/memory.sh
. "$repo/scripts/bench/memory.sh"

parts=" ${BENCH_PARTS:-backup restore memory} "
if [[ $parts == *" backup "* ]]; then
  echo "bench: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $rows rows per step, S3 over $transport"
  add_rows 1 "$rows"
  measure "1x"
  add_rows $((rows + 1)) "$rows"
  measure "2x"
  [ -n "${BENCH_KEEP:-}" ] || psql -d postgres -c "DROP DATABASE IF EXISTS $db"
fi
if [[ $parts == *" restore "* ]]; then bench_restore; fi
if [[ $parts == *" memory "* ]]; then bench_memory; fi
