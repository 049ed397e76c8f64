# shellcheck shell=bash
# The restore part of scripts/bench.sh (sourced; uses its work directory,
# buckets, psql, timed and stats). For two PostgreSQL databases it backs up
# once, then times in the same run, alternating, BENCH_RUNS times each:
#   (s)  the stock tools: download | age -d | zstd -d | pg_restore -d (one stream)
#   (c1) coffer restore --jobs 1   (today's single stream)
#   (cN) coffer restore --jobs N   (spooled, then pg_restore --jobs N; N = restore.jobs default)
#   (d)  coffer drill --jobs N     (the same restore into a scratch database, counted and dropped)
# and prints min / median wall seconds and the ratios cN/s, c1/s and d/cN.
# BENCH_RESTORE_SHAPES (default "many two") picks the databases:
#
#   many   BENCH_MANY_TABLES tables (default 40), each with two secondary
#          indexes, about BENCH_MANY_MB MB of rows in all (default 1000)
#   two    the realistic shape: a large events table and an accounts table,
#          BENCH_TWO_ROWS rows in all (default 6000000), primary keys and
#          two secondary indexes on events

# restore.jobs' default: one worker per CPU, at most 8.
restore_jobs=$(( $(nproc) < 8 ? $(nproc) : 8 ))

# make_many DB: BENCH_MANY_TABLES tables of events with two indexes each.
make_many() {
  local db=$1 t n=${BENCH_MANY_TABLES:-40}
  local per=$(( ${BENCH_MANY_MB:-1000} * 1000000 / 150 / n )) # ~150 bytes a row
  psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  for ((t = 1; t <= n; t++)); do
    psql -d "$db" -c "
    CREATE TABLE t$t (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, account int NOT NULL,
      amount numeric(12,2), kind text, note text, attrs jsonb);
    INSERT INTO t$t SELECT i, timestamptz '2024-01-01' + i * interval '7 seconds', ((i * 7919) % 50000)::int,
      round((random() * 10000)::numeric, 2), (ARRAY['lesson','invoice','refund','login','export'])[1 + (i % 5)::int],
      md5(i::text) || ' pupil ' || (i % 9973), jsonb_build_object('ok', i % 3 = 0, 'tag', (i % 7)::int)
    FROM generate_series(1, $per) AS i;
    CREATE INDEX ON t$t (account); CREATE INDEX ON t$t (created_at);"
  done
}

# make_two DB: events (most rows) and accounts, as the issue's realistic database.
make_two() {
  local db=$1 total=${BENCH_TWO_ROWS:-6000000}
  local accounts=$(( total / 12 )) events=$(( total - total / 12 ))
  psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  psql -d "$db" -c "
  CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, email text, created_at timestamptz, settings jsonb);
  INSERT INTO accounts SELECT i, 'account ' || i, 'a' || i || '@example.org', timestamptz '2020-01-01' + i * interval '1 minute',
    jsonb_build_object('plan', (ARRAY['free','school','hub'])[1 + i % 3], 'seats', i % 40) FROM generate_series(1, $accounts) AS i;
  CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, account int NOT NULL,
    amount numeric(12,2), kind text, note text, attrs jsonb);
  INSERT INTO events SELECT i, timestamptz '2024-01-01' + i * interval '7 seconds', ((i * 7919) % $accounts + 1)::int,
    round((random() * 10000)::numeric, 2), (ARRAY['lesson','invoice','refund','login','export'])[1 + (i % 5)::int],
    md5(i::text) || ' ' || repeat(chr(97 + (i % 26)::int), (i % 40)::int) || ' pupil ' || (i % 9973),
    jsonb_build_object('ip', '10.' || (i % 255) || '.1.1', 'ok', i % 3 = 0) FROM generate_series(1::bigint, $events) AS i;
  CREATE INDEX ON events (account); CREATE INDEX ON events (created_at);"
}

# restore_measure LABEL DB: back DB up once, then time the four restores.
restore_measure() {
  local label=$1 db=$2 job=rb-$1 i runs=${BENCH_RUNS:-5}
  cat >> "$work/coffer.yaml" <<YAML
  $job:
    source: {type: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: $db}
    destinations: [primary]
    drill: {from: primary, identity_file: $work/key.txt, target: {host: 127.0.0.1, port: 5432, user: postgres}}
YAML
  psql -d "$db" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
  "$work/coffer" backup --config "$work/coffer.yaml" --job "$job" --log-format json 2>"$work/rb-backup.log" >/dev/null
  local key size
  key=$("$work/benchtool" list "$s3_primary" "bench-$suffix" "$job/" | grep '/payload\.' | tail -1)
  size=$(psql -d postgres -Atc "SELECT pg_size_pretty(pg_database_size('$db'))")
  local target=${db}_r
  drop_target() { psql -d postgres -c "DROP DATABASE IF EXISTS $target" >/dev/null; }
  stock_restore() {
    set -o pipefail
    psql -d postgres -c "CREATE DATABASE $target" >/dev/null &&
      "$work/benchtool" download "$s3_primary" "bench-$suffix" "$key" | "$COFFER_TEST_BIN/age" -d -i "$work/key.txt" |
      zstd -d -q | pg_restore -h 127.0.0.1 -U postgres --no-owner --exit-on-error -d "$target"
  }
  for ((i = 1; i <= runs; i++)); do
    drop_target
    timed "$work/rr-s.$i" bash -c "$(declare -f psql stock_restore); work=$work s3_primary=$s3_primary suffix=$suffix key=$key target=$target COFFER_TEST_BIN=$COFFER_TEST_BIN stock_restore"
    drop_target
    timed "$work/rr-c1.$i" "$work/coffer" restore --config "$work/coffer.yaml" --job "$job" --identity "$work/key.txt" --target "$target" --jobs 1 --log-format json
    drop_target
    timed "$work/rr-cn.$i" "$work/coffer" restore --config "$work/coffer.yaml" --job "$job" --identity "$work/key.txt" --target "$target" --jobs "$restore_jobs" --log-format json
    drop_target
    timed "$work/rr-d.$i" "$work/coffer" drill --config "$work/coffer.yaml" --job "$job" --jobs "$restore_jobs" --log-format json
  done
  drop_target
  runs_of() { local j; for ((j = 1; j <= runs; j++)); do echo "$work/$1.$j"; done; }
  local s_min s_med c1_min c1_med cn_min cn_med d_min d_med
  # shellcheck disable=SC2046 # one path per run, no spaces (mktemp -d)
  read -r s_min s_med _ < <(stats $(runs_of rr-s))
  # shellcheck disable=SC2046
  read -r c1_min c1_med _ < <(stats $(runs_of rr-c1))
  # shellcheck disable=SC2046
  read -r cn_min cn_med _ < <(stats $(runs_of rr-cn))
  # shellcheck disable=SC2046
  read -r d_min d_med _ < <(stats $(runs_of rr-d))
  rm -f "$work"/rr-*
  r() { echo "scale=2; $1 / $2" | bc; }
  printf 'restore %-5s db %s, payload %s, %d runs each (min / median wall seconds):\n' "$label" "$size" "$key" "$runs"
  printf '    stock age|zstd|pg_restore %6.2f / %6.2f | coffer --jobs 1 %6.2f / %6.2f | coffer --jobs %d %6.2f / %6.2f | drill --jobs %d %6.2f / %6.2f\n' \
    "$s_min" "$s_med" "$c1_min" "$c1_med" "$restore_jobs" "$cn_min" "$cn_med" "$restore_jobs" "$d_min" "$d_med"
  printf '    RATIO --jobs %d / stock: %s (min) %s (median) | --jobs 1 / stock: %s (min) %s (median) | drill / restore --jobs %d: %s (min) %s (median)\n' \
    "$restore_jobs" "$(r "$cn_min" "$s_min")" "$(r "$cn_med" "$s_med")" "$(r "$c1_min" "$s_min")" "$(r "$c1_med" "$s_med")" \
    "$restore_jobs" "$(r "$d_min" "$cn_min")" "$(r "$d_med" "$cn_med")"
}

bench_restore() {
  echo "bench restore: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, restore.jobs $restore_jobs"
  local shape
  for shape in ${BENCH_RESTORE_SHAPES:-many two}; do
    "make_$shape" "coffer_bench_$shape"
    restore_measure "$shape" "coffer_bench_$shape"
    [ -n "${BENCH_KEEP:-}" ] || psql -d postgres -c "DROP DATABASE IF EXISTS coffer_bench_$shape"
  done
}
