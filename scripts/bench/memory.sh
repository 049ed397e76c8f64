# shellcheck shell=bash
# The memory part of scripts/bench.sh (sourced; uses its work directory,
# buckets, timed and stats). Backups of an exec source that writes
# realistic CSV rows (benchtool rows: about 4:1 under zstd -3) to BOTH
# destinations, for each size in BENCH_MEM_GB (default "1 10"), BENCH_RUNS
# times: wall seconds (min / median), throughput of the dump, and Coffer's
# peak RSS (the largest of the runs). With BENCH_BASELINE=REV the coffer
# built from git revision REV alternates with this one, as "before".
# The buckets are emptied after every run, untimed: a 10 GB backup stores
# about 3.5 GB in each, and ten of them would fill this machine's disk.

empty_buckets() {
  local u
  for u in "$s3_primary" "$s3_offsite"; do
    "$work/benchtool" rmbucket "$u" "bench-$suffix" && "$work/benchtool" mkbucket "$u" "bench-$suffix"
  done
}

bench_memory() {
  local gb runs=${BENCH_RUNS:-5} bins=("$work/coffer") names=(now)
  if [ -n "${BENCH_BASELINE:-}" ]; then
    mkdir -p "$work/base-src"
    git -C "$repo" archive "$BENCH_BASELINE" | tar -x -C "$work/base-src"
    (cd "$work/base-src" && go build -o "$work/coffer-base" ./cmd/coffer)
    bins=("$work/coffer-base" "$work/coffer") names=("before ($BENCH_BASELINE)" now)
  fi
  echo "bench memory: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, exec source to 2 destinations, $runs runs each"
  for gb in ${BENCH_MEM_GB:-1 10}; do
    local bytes=$((gb * 1000000000)) job=mem-${gb}g
    cat >> "$work/coffer.yaml" <<YAML
  $job:
    source: {type: exec, command: [$work/benchtool, rows, "$bytes"], extension: csv}
    drill: {enabled: false}
YAML
    local i b
    for ((i = 1; i <= runs; i++)); do
      for b in "${!bins[@]}"; do
        timed "$work/rm-$b.$i" "${bins[$b]}" backup --config "$work/coffer.yaml" --job "$job" --log-format json
        empty_buckets
      done
    done
    local mins=() meds=()
    for b in "${!bins[@]}"; do
      local files=() j mn md rss
      for ((j = 1; j <= runs; j++)); do files+=("$work/rm-$b.$j"); done
      read -r mn md _ _ rss < <(stats "${files[@]}")
      mins+=("$mn") meds+=("$md")
      printf '  %2d GB dump  %-28s wall %7.2f / %7.2f s  (%5.1f MB/s median)  peak RSS %4d MiB\n' \
        "$gb" "${names[$b]}" "$mn" "$md" "$(echo "$bytes / 1000000 / $md" | bc -l)" "$rss"
    done
    if [ "${#bins[@]}" = 2 ]; then
      printf '  %2d GB dump  RATIO now / before wall: %s (min) %s (median)\n' "$gb" \
        "$(echo "scale=3; ${mins[1]} / ${mins[0]}" | bc)" "$(echo "scale=3; ${meds[1]} / ${meds[0]}" | bc)"
      # Run i of each build ran back to back: the ratio pair by pair is
      # the figure least moved by the machine's drift.
      local pairs=""
      for ((j = 1; j <= runs; j++)); do pairs+="$(cut -d' ' -f1 "$work/rm-1.$j") $(cut -d' ' -f1 "$work/rm-0.$j") "; done
      # shellcheck disable=SC2086 # pairs is a list of numbers
      python3 -c 'import statistics,sys
v=[float(x) for x in sys.argv[2:]]; r=sorted(v[i]/v[i+1] for i in range(0,len(v),2))
print("  %2s GB dump  PAIRS now / before wall: median %.3f, range %.3f-%.3f, %d pairs" % (sys.argv[1], statistics.median(r), r[0], r[-1], len(r)))' "$gb" $pairs
    fi
    rm -f "$work"/rm-*
  done
}
