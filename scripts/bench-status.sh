#!/usr/bin/env bash
# Load benchmark of the public status check (issue 5): wrk on loopback against
# GET /api/v1/status with random valid, unknown and invalid NIKs from a decreed stage,
# compared in the same run with a bare axum "hello" server (crates/server/examples/hello.rs),
# at 64 and 256 connections. Prints requests/s, the ratio to hello, p50 and p99.
#
#   scripts/bench-status.sh [--scale S] [--dir DIR] [--duration 15s] [--threads 2]
#                           [--rounds 1] [--reuse]
#
# With --rounds N every run is repeated N times, status and hello alternating which goes
# first, and the medians are printed too (the machine is shared: single runs are noisy).
# --scale 0.05 (default) or 1 (the real size; the demo takes minutes). The decreed database
# is made with `kjp demo --no-serve` in DIR (default /tmp/kjp-bench-<scale>); --reuse keeps
# one made before. Needs wrk and sqlite3 (apt-get install -y wrk sqlite3). wrk and the
# servers share the machine's cores: the figures are for that, not for a server alone.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=0.05
dir=""
duration=15s
threads=2
rounds=1
reuse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
dir="${dir:-${TMPDIR:-/tmp}/kjp-bench-$scale}"
port="${KJP_BENCH_PORT:-18080}"
hello_port="${KJP_BENCH_HELLO_PORT:-18081}"
for tool in wrk sqlite3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done

target="${CARGO_TARGET_DIR:-target}"
echo "== building release"
cargo build --release -q -p kjp-cli --bin kjp
cargo build --release -q -p kjp-server --example hello
kjp="$target/release/kjp"
hello="$target/release/examples/hello"

if [ "$reuse" = 1 ] && [ -f "$dir/kjp.db" ]; then
  echo "== reusing the decreed database in $dir"
else
  echo "== kjp demo --no-serve --scale $scale --dir $dir"
  mkdir -p "$dir"
  "$kjp" demo --no-serve --scale "$scale" --dir "$dir" >"$dir/demo.log" 2>&1
  grep -E '^decree|candidates decided' "$dir/demo.log" || true
fi
niks="$dir/niks.txt"
sqlite3 "$dir/kjp.db" "SELECT nik || '|' || birth_date FROM decisions
  WHERE stage = '2025/1' AND length(birth_date) = 10 ORDER BY random() LIMIT 20000" >"$niks"
echo "== $(wc -l <"$niks") NIKs of the decree sampled into $niks"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
started=$(date +%s.%N)
KJP_DATABASE_URL="sqlite:$dir/kjp.db" "$kjp" serve --bind 127.0.0.1 --port "$port" --rate-limit 0 \
  >"$dir/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
"$hello" "$hello_port" >"$dir/hello.log" 2>&1 &
pids+=($!)
for url in "http://127.0.0.1:$port/healthz" "http://127.0.0.1:$hello_port/"; do
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.5; done
  curl -fsS -o /dev/null "$url" || { echo "not answering: $url" >&2; cat "$dir/serve.log" >&2; exit 1; }
done
grep -E '^Stage' "$dir/serve.log" || true
echo "== kjp serve answering $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s after start" \
  "(index built), $(awk '/VmRSS/{printf "%.0f MB", $2/1024}' "/proc/$serve_pid/status") resident"
# One sample answer of each kind, to see the mix is what it says.
first=$(head -1 "$niks"); nik="${first%|*}"; birth="${first#*|}"
echo "== sample: $(curl -s "http://127.0.0.1:$port/api/v1/status?nik=$nik&birth_date=$birth&year=2025&stage=1" | head -c 120)"

export KJP_BENCH_NIKS="$niks"
run() { # name port connections -> "rps p50_ms p99_ms non2xx errors"
  local out
  out=$(wrk -t"$threads" -c"$3" -d"$duration" -s scripts/bench-status.lua "http://127.0.0.1:$2" | grep '^RESULT')
  # RESULT requests duration_us p50_us p99_us max_us socket_errors non2xx
  awk '{printf "%.0f %.2f %.2f %d %d %.1f\n", $2/($3/1e6), $4/1000, $5/1000, $8, $7, $6/1000}' <<<"$out"
}
echo "== warming up (3 s each)"
wrk -t"$threads" -c64 -d3s -s scripts/bench-status.lua "http://127.0.0.1:$port" >/dev/null
wrk -t"$threads" -c64 -d3s -s scripts/bench-status.lua "http://127.0.0.1:$hello_port" >/dev/null

echo "== wrk -t$threads -d$duration, $rounds round(s), $(nproc) cores shared by wrk and the server;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$dir/bench-results.txt"
: >"$results"
printf '\nEach run (status and hello alternate which goes first):\n\n'
printf '| round | connections | server | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for r in $(seq 1 "$rounds"); do
  for c in 64 256; do
    order="status hello"
    [ $((r % 2)) = 0 ] && order="hello status"
    for name in $order; do
      p="$port"; [ "$name" = hello ] && p="$hello_port"
      read -r rps p50 p99 non err max <<<"$(run "$name" "$p" "$c")"
      echo "$c $name $rps $p50 $p99 $max $non $err" >>"$results"
      printf '| %d | %d | %s | %d | %s | %s | %s | %d | %d |\n' "$r" "$c" "$name" "$rps" "$p50" "$p99" "$max" "$non" "$err"
    done
  done
done
median() { sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v c="$1" -v n="$2" -v k="$3" '$1==c && $2==n {print $k}' "$results" | median; }
printf '\nMedians over the rounds:\n\n'
printf '| connections | server | requests/s | ratio to hello | p50 ms | p99 ms |\n'
printf '|---|---|---|---|---|---|\n'
for c in 64 256; do
  s_rps=$(col "$c" status 3); h_rps=$(col "$c" hello 3)
  ratio=$(awk -v a="$s_rps" -v b="$h_rps" 'BEGIN{printf "%.2f", a/b}')
  printf '| %d | kjp serve /api/v1/status | %.0f | %s | %s | %s |\n' "$c" "$s_rps" "$ratio" "$(col "$c" status 4)" "$(col "$c" status 5)"
  printf '| %d | hello (bare axum) | %.0f | 1 | %s | %s |\n' "$c" "$h_rps" "$(col "$c" hello 4)" "$(col "$c" hello 5)"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kjp serve after the runs: $(awk '/VmRSS/{printf "%.0f MB", $2/1024}' "/proc/$serve_pid/status") resident"
echo "Target: at least half of hello's requests/s, p99 under 10 ms. non-2xx on the status"
echo "route are the unknown and wrong-date (404) and invalid (400) NIKs of the mix."
