#!/usr/bin/env bash
# Benchmark: Coffer to two MinIOs vs. the plain shell pipeline to one.
#
#   scripts/bench.sh            # ~1 GB database, then doubled to ~2 GB
#   BENCH_ROWS=400000 scripts/bench.sh   # quicker, smaller
#
# For each size it times, in the same run on the same data, each variant
# BENCH_RUNS times (default 2, alternating; the best time counts):
#   (a)  coffer backup  -> primary AND offsite MinIO (peak RSS via /usr/bin/time)
#   (a1) coffer backup  -> primary only (the same work as the shell pipeline)
#   (b)  pg_dump -Fc -Z0 | zstd -3 -T2 | age -r KEY | upload to ONE MinIO
# and prints wall times, the ratio (a)/(b) and Coffer's peak RSS.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/services.sh >/dev/null
# shellcheck disable=SC1091
source .coffer-test/env

rows=${BENCH_ROWS:-3600000}   # ~1 GB of pg_dump output
db=coffer_bench
work=$(mktemp -d)
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time missing (apt-get install time)"; exit 1; }

go build -o "$work/coffer" ./cmd/coffer
go build -o "$work/benchtool" ./scripts/benchtool
"$work/coffer" keygen -o "$work/key.txt" --signing-key "$work/signing.key" > "$work/keys"
recipient=$(sed -n 1p "$work/keys")
signing_pub=$(sed -n 2p "$work/keys")
export AWS_ACCESS_KEY_ID=$COFFER_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$COFFER_TEST_S3_SECRET_KEY
suffix=$(date +%s)
"$work/benchtool" mkbucket "$COFFER_TEST_S3_PRIMARY" "bench-$suffix"
"$work/benchtool" mkbucket "$COFFER_TEST_S3_OFFSITE" "bench-$suffix"
"$work/benchtool" mkbucket "$COFFER_TEST_S3_PRIMARY" "bench-shell-$suffix"
cleanup() { # the benchmark's buckets hold gigabytes: remove them
  "$work/benchtool" rmbucket "$COFFER_TEST_S3_PRIMARY" "bench-$suffix" || true
  "$work/benchtool" rmbucket "$COFFER_TEST_S3_OFFSITE" "bench-$suffix" || true
  "$work/benchtool" rmbucket "$COFFER_TEST_S3_PRIMARY" "bench-shell-$suffix" || true
  rm -rf "$work"
}
if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: keeping $work and buckets bench-$suffix, bench-shell-$suffix"; else trap cleanup EXIT; fi

cat > "$work/coffer.yaml" <<YAML
signing: {key_file: $work/signing.key, public_keys: [$signing_pub]}
recipients: [$recipient]
destinations:
  primary: {type: s3, endpoint: $COFFER_TEST_S3_PRIMARY, bucket: bench-$suffix, path_style: true, insecure_http: true, access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: "\${AWS_SECRET_ACCESS_KEY}"}
  offsite: {type: s3, endpoint: $COFFER_TEST_S3_OFFSITE, bucket: bench-$suffix, path_style: true, insecure_http: true, access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: "\${AWS_SECRET_ACCESS_KEY}"}
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

# run_coffer JOB LOG: one coffer backup; prints wall seconds, records peak RSS.
run_coffer() {
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$work/coffer" backup --config "$work/coffer.yaml" --job "$1" --log-format json 2>"$2" >/dev/null || { cat "$2" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

# run_shell N: the plain pipeline to one destination; prints wall seconds.
run_shell() {
  local t0 t1
  t0=$(date +%s.%N)
  pg_dump -h 127.0.0.1 -U postgres --format=custom --compress=0 $db | zstd -3 -T2 -q | "$COFFER_TEST_BIN/age" -r "$recipient" \
    | "$work/benchtool" upload "$COFFER_TEST_S3_PRIMARY" "bench-shell-$suffix" "shell-$1.age" 2>/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

minof() { printf '%s\n' "$@" | sort -g | head -1; }

measure() { # $1 = label
  # Settle the database first (autovacuum and checkpoints after the bulk
  # insert would otherwise slow whichever run comes first), then alternate
  # the variants BENCH_RUNS times and keep each one's best time.
  psql -d $db -c "VACUUM (ANALYZE) events" -c "CHECKPOINT"
  local size a=() a1=() b=() rss=0 r
  size=$(psql -d $db -Atc "SELECT pg_size_pretty(pg_database_size('$db'))")
  for ((i = 1; i <= ${BENCH_RUNS:-2}; i++)); do
    b+=("$(run_shell "$1-$i")")
    a+=("$(run_coffer bench "$work/coffer.log")")
    r=$(( $(tail -1 "$work/rss") / 1024 )); (( r > rss )) && rss=$r
    a1+=("$(run_coffer bench-one "$work/coffer-one.log")")
  done
  local ta ta1 tb dump stored
  ta=$(minof "${a[@]}"); ta1=$(minof "${a1[@]}"); tb=$(minof "${b[@]}")
  dump=$(grep -o '"plain_bytes":[0-9]*' "$work/coffer.log" | tail -1 | cut -d: -f2)
  stored=$(grep -o '"stored_bytes":[0-9]*' "$work/coffer.log" | tail -1 | cut -d: -f2)
  printf '%-3s db %-8s dump %5.0f MiB stored %4.0f MiB | coffer->2 dests %5.1fs | coffer->1 dest %5.1fs | shell->1 dest %5.1fs | ratio 2dests/shell %.2f, 1dest/shell %.2f | coffer peak RSS %d MiB\n' \
    "$1" "$size" "$(echo "$dump/1048576" | bc -l)" "$(echo "$stored/1048576" | bc -l)" "$ta" "$ta1" "$tb" "$(echo "$ta / $tb" | bc -l)" "$(echo "$ta1 / $tb" | bc -l)" "$rss"
  echo "    all runs (s): coffer->2 ${a[*]} | coffer->1 ${a1[*]} | shell ${b[*]}"
}

echo "bench: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $rows rows per step"
add_rows 1 "$rows"
measure "1x"
add_rows $((rows + 1)) "$rows"
measure "2x"
[ -n "${BENCH_KEEP:-}" ] || psql -d postgres -c "DROP DATABASE IF EXISTS $db"
