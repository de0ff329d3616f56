#!/usr/bin/env bash
# Soak benchmark (issue 8): the public status check loaded with wrk (the mix of
# scripts/bench-status.lua) while, at the same time, staff use the console, a stage is run
# and a payment batch is built. Reports errors and p99 against a quiet baseline.
#
#   scripts/bench-soak.sh [--scale S] [--dir DIR] [--duration 30s] [--connections 64]
#                         [--threads 2] [--staff 4] [--think 0.2] [--start-after 5]
#                         [--pg URL] [--reuse]
#
# Phases, each on a fresh copy of a prepared, decreed database (so every phase pays and
# verifies the same work): (1) the stage run and the batch alone, no server; (2) the server
# with staff traffic only; (3) the quiet baseline, wrk only; (4) the soak: wrk, staff, and
# --start-after seconds in, the stage run and the batch; (5) the two alone again.
# The stage run is `kjp stage verify 2025/2` (tahap II 2025, opened in the preparation,
# decided from the same snapshots; the decreed 2025/1 the status check answers from is not
# touched); the batch is `kjp pay --stage 2025/1 --months 2025-04..2025-06` (January to
# March are paid in the preparation). Staff: --staff simulated officers (admin, auditor,
# kecamatan post, admin, ...) with curl cookie jars: sign in (CSRF double-submit), then
# rounds of home, review queue, complaints, dashboard, a child's page (POST with the
# session's CSRF token) and the audit log (not the post), sign out; --think seconds between
# requests. Errors: socket errors, a status other than 200/400/404 on the status route and
# any 5xx in the server log; for staff anything but 2xx/3xx, or a child's page without the
# child. SQLite by default (`kjp demo --no-serve` in DIR, default /tmp/kjp-soak-<scale>;
# --reuse keeps it). --pg URL (e.g. postgres://postgres@127.0.0.1:5432/postgres): databases
# kjp_soak_base (prepared as scripts/bench-money.sh does; kept for --reuse) and kjp_soak_run
# (a copy per phase, dropped at the end) on URL's server. Needs wrk, curl, gawk, sqlite3,
# and psql for --pg. wrk, the server and the commands share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=0.05
dir=""
duration=30s
connections=64
threads=2
staff_n=4
think=0.2
start_after=5
pg=""
reuse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --staff) staff_n="$2"; shift 2 ;;
    --think) think="$2"; shift 2 ;;
    --start-after) start_after="$2"; shift 2 ;;
    --pg) pg="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
dir="${dir:-${TMPDIR:-/tmp}/kjp-soak-$scale}"
dir="$(mkdir -p "$dir" && cd "$dir" && pwd)"
port="${KJP_BENCH_PORT:-18090}"
secs="${duration%s}"
case "$secs" in ''|*[!0-9]*) echo "--duration takes seconds, e.g. 30s" >&2; exit 2 ;; esac
for tool in wrk curl gawk sqlite3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done
[ -z "$pg" ] || command -v psql >/dev/null || { echo "psql is missing (postgresql-client)" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
echo "== building release"
cargo build --release -q -p kjp-cli --bin kjp
kjp="$(cd "$target/release" && pwd)/kjp"

# The prepared database (base) and the copy each phase works on (run).
if [ -n "$pg" ]; then
  server="${pg%/*}"
  base_url="$server/kjp_soak_base"
  run_url="$server/kjp_soak_run"
  export KJP_DATA_DIR="$dir/pg-data"
  sql() { psql "$base_url" -qtAX -c "$1"; }
else
  base_url="sqlite:$dir/kjp.db"
  run_url="sqlite:$dir/run.db"
  export KJP_DATA_DIR="$dir/kjp-data"
  sql() { sqlite3 "$dir/kjp.db" "$1"; }
fi
kb() { KJP_DATABASE_URL="$base_url" "$kjp" "$@"; }
kr() { KJP_DATABASE_URL="$run_url" "$kjp" "$@"; }

fresh_run_db() {
  if [ -n "$pg" ]; then
    PGOPTIONS="-c client_min_messages=warning" psql "$pg" -qX -c "DROP DATABASE IF EXISTS kjp_soak_run" \
      -c "CREATE DATABASE kjp_soak_run TEMPLATE kjp_soak_base" >/dev/null
  else
    rm -f "$dir/run.db" "$dir/run.db-wal" "$dir/run.db-shm"
    sqlite3 "$dir/kjp.db" ".backup '$dir/run.db'"
  fi
}

# ---- preparation (untimed)
if [ -n "$pg" ]; then
  have=$(psql "$pg" -qtAX -c "SELECT 1 FROM pg_database WHERE datname = 'kjp_soak_base'")
  if [ "$reuse" = 1 ] && [ "$have" = 1 ]; then
    echo "== reusing the PostgreSQL database kjp_soak_base"
  else
    echo "== preparing kjp_soak_base on PostgreSQL (as scripts/bench-money.sh, scale $scale)"
    psql "$pg" -qX -c "DROP DATABASE IF EXISTS kjp_soak_run" -c "DROP DATABASE IF EXISTS kjp_soak_base" \
      -c "CREATE DATABASE kjp_soak_base" >/dev/null
    rm -rf "$KJP_DATA_DIR"
    [ -f "$dir/data/dukcapil.csv" ] || "$kjp" generate --scale "$scale" --seed 7 --out "$dir/data" >/dev/null
    {
      kb import --data "$dir/data" --force
      kb stage open 2025 1
      kb stage verify 2025/1
      kb bank prepare-bench --stage 2025/1
      kb bank simulate-accounts --stage 2025/1 --out "$dir/pg-accounts.csv"
      kb accounts import "$dir/pg-accounts.csv"
      kb pay --stage 2025/1 --months 2025-01..2025-03 --out "$dir/pg-prep-payments"
    } >"$dir/prepare-pg.log" 2>&1 || { tail -20 "$dir/prepare-pg.log" >&2; exit 1; }
  fi
else
  if [ "$reuse" = 1 ] && [ -f "$dir/kjp.db" ]; then
    echo "== reusing the decreed database in $dir"
  else
    echo "== kjp demo --no-serve --scale $scale --dir $dir"
    "$kjp" demo --no-serve --scale "$scale" --dir "$dir" >"$dir/demo.log" 2>&1 \
      || { tail -20 "$dir/demo.log" >&2; exit 1; }
    grep -E '^decree|candidates decided|^paid' "$dir/demo.log" || true
  fi
fi
kb stage open 2025 2 >/dev/null
# Staff accounts of the soak, with fresh passwords; the post officer in the kecamatan with
# the most children, so that its child pages are in scope.
kec=$(sql "SELECT substr(kelurahan, 1, 8) FROM decisions WHERE stage = '2025/1'
  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
sql "SELECT nik FROM decisions WHERE stage = '2025/1' AND kelurahan LIKE '$kec%'
  ORDER BY random() LIMIT 200" >"$dir/staff-niks.txt"
: >"$dir/staff-accounts.txt"
for i in $(seq 1 "$staff_n"); do
  case $(( (i - 1) % 4 )) in
    0|3) role=admin; scope="" ;;
    1) role=auditor; scope="" ;;
    2) role=post; scope="$kec" ;;
  esac
  user="soak.$role.$i"
  kb user add --username "$user" --role "$role" ${scope:+--scope "$scope"} >/dev/null 2>&1 || true
  pw=$(kb user reset --username "$user" | sed -n 's/.*new password \([^ ]*\) .*/\1/p')
  [ -n "$pw" ] || { echo "no password for $user" >&2; exit 1; }
  echo "$user $role $pw" >>"$dir/staff-accounts.txt"
done
niks="$dir/niks.txt"
sql "SELECT nik || '|' || birth_date FROM decisions
  WHERE stage = '2025/1' AND length(birth_date) = 10 ORDER BY random() LIMIT 20000" >"$niks"
echo "== $(wc -l <"$niks") NIKs of the decree sampled for wrk; $staff_n staff accounts" \
  "($(cut -d' ' -f2 "$dir/staff-accounts.txt" | tr '\n' ' ')post in $kec)"
[ -z "$pg" ] && sqlite3 "$dir/kjp.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
now() { date +%s.%N; }

# ---- the stage run and the batch, started together; "name seconds exit" lines into $1
work() { # results-file label
  local out="$1" label="$2"
  (
    t0=$(now); set +e
    kr stage verify 2025/2 >"$dir/$label-verify.log" 2>&1; rc=$?
    echo "stage $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}') $rc $t0 $(now)" >>"$out"
  ) &
  local a=$!
  (
    t0=$(now); set +e
    rm -rf "$dir/$label-payments"
    kr pay --stage 2025/1 --months 2025-04..2025-06 --out "$dir/$label-payments" --format json \
      >"$dir/$label-pay.log" 2>&1; rc=$?
    echo "pay $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}') $rc $t0 $(now)" >>"$out"
  ) &
  local b=$!
  wait "$a" "$b" || true
}

# ---- one simulated officer: sign in, a round of pages, sign out, again, until $end
staff_loop() { # user role password base-url end-epoch log
  local user="$1" role="$2" pw="$3" url="$4" end="$5" log="$6"
  local jar; jar=$(mktemp "$dir/jar.XXXXXX")
  local page; page=$(mktemp "$dir/page.XXXXXX")
  local n=0
  req() { # label curl-args... ; appends "epoch label code seconds"
    local label="$1"; shift
    local w
    w=$(curl -s -o "$page" -b "$jar" -c "$jar" --max-time 30 -w '%{http_code} %{time_total}' "$@" 2>/dev/null) \
      || w="${w:-000 0}"
    # A child's page that does not show the child asked for is an error too.
    if [ "$label" = child ] && [ "${w%% *}" = 200 ] && ! grep -q "<small>NIK $nik" "$page"; then w="200-without-child ${w#* }"; fi
    echo "$(date +%s.%N) $label $w" >>"$log"
    sleep "$think"
  }
  while awk -v e="$end" -v t="$(now)" 'BEGIN{exit !(t < e)}'; do
    : >"$jar"
    req login_form "$url/staff/login"
    local lc; lc=$(awk '$6 == "kjp_login" {print $7}' "$jar")
    req login "$url/staff/login" --data-urlencode "username=$user" --data-urlencode "password=$pw" \
      --data-urlencode "csrf=$lc"
    req home "$url/staff"
    local csrf; csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$page" | head -1)
    for _ in 1 2 3; do
      n=$((n + 1))
      local nik; nik=$(sed -n "$(( (RANDOM % $(wc -l <"$dir/staff-niks.txt")) + 1 ))p" "$dir/staff-niks.txt")
      req home "$url/staff"
      req review "$url/staff/review?stage=2025/2"
      req complaints "$url/staff/complaints"
      req dashboard "$url/staff/dashboard?stage=2025/1"
      req child "$url/staff/child" --data-urlencode "csrf=$csrf" --data-urlencode "stage=2025/1" \
        --data-urlencode "nik=$nik"
      [ "$role" = post ] || req audit "$url/staff/audit"
      awk -v e="$end" -v t="$(now)" 'BEGIN{exit !(t < e)}' || break
    done
    req logout "$url/staff/logout" --data-urlencode "csrf=$csrf"
  done
  rm -f "$jar" "$page"
}
staff_start() { # end-epoch log ; starts the officers in the background
  : >"$2"
  staff_pids=()
  while read -r user role pw; do
    staff_loop "$user" "$role" "$pw" "http://localhost:$port" "$1" "$2" &
    staff_pids+=($!); pids+=($!)
  done <"$dir/staff-accounts.txt"
}

run_wrk() { # -> "rps p50_ms p99_ms max_ms socket_errors non2xx"
  wrk -t"$threads" -c"$connections" -d"$duration" -s scripts/bench-status.lua "http://127.0.0.1:$port" \
    | awk '/^RESULT/ {printf "%.0f %.2f %.2f %.1f %d %d\n", $2/($3/1e6), $4/1000, $5/1000, $6/1000, $7, $8}'
}
export KJP_BENCH_NIKS="$niks"
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== machine: $(nproc) cores; load average before: $(load);" \
  "other builds: $(pgrep -c -f '(^|/)(cargo|rustc) ' || true) cargo/rustc processes"

# ---- 1. the stage run and the batch alone
fresh_run_db
alone="$dir/work-alone.txt"; : >"$alone"
echo "== 1. stage run and batch alone (no server)"
work "$alone" alone
cat "$alone"

# ---- the server, on a fresh copy
fresh_run_db
started=$(now)
KJP_DATABASE_URL="$run_url" "$kjp" serve --bind 127.0.0.1 --port "$port" --rate-limit 0 --log-format json \
  >"$dir/serve.out" 2>"$dir/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.5; done
curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "kjp serve not answering" >&2; cat "$dir/serve.log" >&2; exit 1; }
echo "== kjp serve answering $(awk -v a="$started" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s after start," \
  "$(awk '/VmRSS/{printf "%.0f MB", $2/1024}' "/proc/$serve_pid/status") resident"
wrk -t"$threads" -c"$connections" -d3s -s scripts/bench-status.lua "http://127.0.0.1:$port" >/dev/null

# ---- 2. staff alone
echo "== 2. staff traffic alone, $duration"
s2a=$(now)
staff_start "$(awk -v t="$s2a" -v d="$secs" 'BEGIN{printf "%.3f", t+d}')" "$dir/staff-alone.txt"
wait "${staff_pids[@]}" || true
s2b=$(now)

# ---- 3. quiet baseline
rss() { awk '/VmRSS/{printf "%.0f MB", $2/1024}' "/proc/$serve_pid/status"; }
echo "== 3. quiet baseline: wrk -t$threads -c$connections -d$duration; load average $(load); kjp serve $(rss) resident"
s3a=$(now)
quiet=$(run_wrk)
s3b=$(now)

# ---- 4. soak
echo "== 4. soak: wrk + $staff_n staff + (after ${start_after} s) stage run and batch; load average $(load);" \
  "kjp serve $(rss) resident"
soakw="$dir/work-soak.txt"; : >"$soakw"
s4a=$(now)
run_wrk >"$dir/wrk-soak.txt" &
wrk_pid=$!; pids+=($wrk_pid)
staff_start "$(awk -v t="$s4a" -v d="$secs" 'BEGIN{printf "%.3f", t+d}')" "$dir/staff-soak.txt"
sleep "$start_after"
work "$soakw" soak
wait "$wrk_pid"
wait "${staff_pids[@]}" || true
s4b=$(now)
soak=$(cat "$dir/wrk-soak.txt")
cat "$soakw"
load_after=$(load)
rss_after=$(awk '/VmRSS/{printf "%.0f MB", $2/1024}' "/proc/$serve_pid/status")
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# ---- 5. the stage run and the batch alone again, for the noise of the machine
fresh_run_db
after="$dir/work-after.txt"; : >"$after"
echo "== 5. stage run and batch alone again (no server)"
work "$after" after
cat "$after"
if [ -n "$pg" ]; then
  psql "$pg" -qX -c "DROP DATABASE IF EXISTS kjp_soak_run" >/dev/null
  echo "(kjp_soak_base is kept for --reuse: psql $pg -c 'DROP DATABASE kjp_soak_base' to drop it)"
fi

# ---- report
# Server log lines (JSON) of a route in a window: status counts and latency percentiles.
logstats() { # route t0 t1 -> "n p50 p99 max unexpected 5xx"  (unexpected: not 200/400/404)
  gawk -v route="$1" -v t0="$2" -v t1="$3" '
    function epoch(ts,  d, k) { k = substr(ts, 1, 16)  # mktime once a minute
      if (!(k in memo)) { d = k; gsub(/[-T:]/, " ", d); memo[k] = mktime(d " 0", 1) }
      return memo[k] + substr(ts, 18, 9) }
    index($0, "\"route\":\"" route "\"") {
      match($0, /"timestamp":"([^"]*)"/, m); t = epoch(m[1]); if (t < t0 || t > t1) next
      match($0, /"status":([0-9]+)/, s); match($0, /"latency_ms":([0-9.e+-]+)/, l)
      lat[++n] = l[1] + 0
      if (s[1] != 200 && s[1] != 400 && s[1] != 404) bad++
      if (s[1] >= 500) e5++
    }
    END { if (!n) { print "0 - - - 0 0"; exit }
      asort(lat); i50 = int(n * 0.5 + 0.5); i99 = int(n * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
      printf "%d %.2f %.2f %.1f %d %d\n", n, lat[i50], lat[i99], lat[n], bad + 0, e5 + 0 }' "$dir/serve.log"
}
# Staff requests: "count errors p50_ms p99_ms max_ms" (errors: not 2xx/3xx, or no answer).
staffstats() {
  local e; e=$(awk '$3 !~ /^[23]/' "$1" | wc -l)
  awk '{print $4 * 1000}' "$1" | sort -g | awk -v e="$e" '{ v[NR] = $1 } END {
    if (!NR) { print "0 0 - - -"; exit }
    i50 = int(NR * 0.5 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
    printf "%d %d %.1f %.1f %.1f\n", NR, e, v[i50], v[i99], v[NR] }'
}
codes() { awk '{c[$3]++} END {for (k in c) printf "%s%s x%d", (n++ ? ", " : ""), k, c[k]; print ""}' "$1"; }
field() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$3"; }

read -r q_rps q_p50 q_p99 q_max q_err q_non <<<"$quiet"
read -r s_rps s_p50 s_p99 s_max s_err s_non <<<"$soak"
read -r _ _ _ _ q_bad q_5xx <<<"$(logstats /api/v1/status "$s3a" "$s3b")"
read -r _ _ _ _ s_bad s_5xx <<<"$(logstats /api/v1/status "$s4a" "$s4b")"
w0=$(awk 'NR==1 || $4 < m {m = $4} END {print m}' "$soakw"); w1=$(awk '$5 > m {m = $5} END {print m}' "$soakw")
read -r w_n w_p50 w_p99 w_max _ _ <<<"$(logstats /api/v1/status "$w0" "$w1")"
read -r b_n b_p50 b_p99 b_max _ _ <<<"$(logstats /api/v1/status "$s3a" "$s3b")"
read -r a_n a_e a_p50 a_p99 a_max <<<"$(staffstats "$dir/staff-alone.txt")"
read -r k_n k_e k_p50 k_p99 k_max <<<"$(staffstats "$dir/staff-soak.txt")"
fivexx=$(grep -c '"status":5[0-9][0-9]' "$dir/serve.log" || true)
errors=$(grep -c '"level":"ERROR"' "$dir/serve.log" || true)
warns=$(grep -c '"level":"WARN"' "$dir/serve.log" || true)
slow=$(grep -c '"message":"slow statement' "$dir/serve.log" || true)

echo
echo "Soak, $(date -u '+%Y-%m-%d %H:%M') UTC, scale $scale, $([ -n "$pg" ] && echo PostgreSQL || echo SQLite)," \
  "wrk -t$threads -c$connections -d$duration, $staff_n staff, think ${think} s; $(nproc) cores shared by wrk," \
  "the server, curl and the commands; load average after: $load_after"
echo
printf '| status check (wrk) | requests/s | p50 ms | p99 ms | max ms | socket errors | non-2xx (wrk) | unexpected status (log) | 5xx (log) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
printf '| quiet | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$q_rps" "$q_p50" "$q_p99" "$q_max" "$q_err" "$q_non" "$q_bad" "$q_5xx"
printf '| soak | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s_rps" "$s_p50" "$s_p99" "$s_max" "$s_err" "$s_non" "$s_bad" "$s_5xx"
echo
printf '| status check, server-side latency (log) | requests | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n'
printf '| quiet baseline, whole run | %s | %s | %s | %s |\n' "$b_n" "$b_p50" "$b_p99" "$b_max"
printf '| soak, while the stage run or the batch ran (%.1f s) | %s | %s | %s | %s |\n' \
  "$(awk -v a="$w0" -v b="$w1" 'BEGIN{print b-a}')" "$w_n" "$w_p50" "$w_p99" "$w_max"
echo
printf '| staff (curl) | requests | errors | p50 ms | p99 ms | max ms | status codes |\n|---|---|---|---|---|---|---|\n'
printf '| alone (no wrk) | %s | %s | %s | %s | %s | %s |\n' "$a_n" "$a_e" "$a_p50" "$a_p99" "$a_max" "$(codes "$dir/staff-alone.txt")"
printf '| soak | %s | %s | %s | %s | %s | %s |\n' "$k_n" "$k_e" "$k_p50" "$k_p99" "$k_max" "$(codes "$dir/staff-soak.txt")"
echo
printf '| command (seconds, exit code) | alone, before | soak | alone, after |\n|---|---|---|---|\n'
for c in stage pay; do
  label='`kjp stage verify 2025/2`'; [ "$c" = pay ] && label='`kjp pay --stage 2025/1 --months 2025-04..2025-06`'
  printf '| %s | %s s (%s) | %s s (%s) | %s s (%s) |\n' "$label" "$(field $c 2 "$alone")" "$(field $c 3 "$alone")" \
    "$(field $c 2 "$soakw")" "$(field $c 3 "$soakw")" "$(field $c 2 "$after")" "$(field $c 3 "$after")"
done
echo
echo "Server log ($dir/serve.log): $fivexx responses with a 5xx status, $errors errors, $warns warnings" \
  "($slow of them slow statements, over 1 s);" \
  "kjp serve at the end: $rss_after resident."
echo
pagestats() { # log page -> "count p50 max" in ms
  awk -v p="$2" '$2 == p {print $4 * 1000}' "$1" | sort -g | awk '{ v[NR] = $1 } END {
    if (!NR) { print "0 - -"; exit } i = int(NR * 0.5 + 0.5); if (i < 1) i = 1; printf "%d %.0f %.0f\n", NR, v[i], v[NR] }'
}
printf '| staff page | alone: requests | alone: p50 ms | alone: max ms | soak: requests | soak: p50 ms | soak: max ms |\n'
printf '|---|---|---|---|---|---|---|\n'
for p in login_form login home review complaints dashboard child audit logout; do
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$p" $(pagestats "$dir/staff-alone.txt" "$p") $(pagestats "$dir/staff-soak.txt" "$p")
done
[ "$errors" = 0 ] || { echo "-- server errors:"; grep '"level":"ERROR"' "$dir/serve.log" \
  | sed -n 's/.*"message":"\([^"]*\)".*/\1/p' | sort | uniq -c; }
[ "$fivexx" = 0 ] || { echo "-- 5xx by route:"; grep '"status":5[0-9][0-9]' "$dir/serve.log" \
  | sed -n 's/.*"method":"\([^"]*\)","route":"\([^"]*\)","status":\([0-9]*\).*/\1 \2 \3/p' | sort | uniq -c; }
for f in "$dir"/{alone,soak,after}-{verify,pay}.log; do
  grep -qiE 'error|panic' "$f" && { echo "-- $f:"; tail -5 "$f"; }
done
true
