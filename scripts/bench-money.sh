#!/bin/sh
# The money benchmark (issue 6): a payment batch for every recipient of the scale-1
# stage built and recorded, the bank's return file reconciled, and a month of card
# transactions screened. Not a test: it prints the figures for docs/benchmarks.md.
#
#   cargo build --release -p kjp-cli
#   scripts/bench-money.sh DIR                                   # SQLite (DIR/kjp.db)
#   KJP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kjp_bench scripts/bench-money.sh DIR
#
# DIR/data is generated at scale 1 if missing. The stage is settled and decreed by the
# SYNTHETIC `kjp bank prepare-bench`; accounts, the return file and the card feed are
# SYNTHETIC too (`kjp bank ...`). Untimed setup first, then the three timed steps.
set -eu
DIR=${1:?usage: scripts/bench-money.sh DIR}
KJP=${KJP:-target/release/kjp}
export KJP_DATABASE_URL=${KJP_DATABASE_URL:-sqlite:$DIR/kjp.db}
export KJP_DATA_DIR=${KJP_DATA_DIR:-$DIR/kjp-data}
TIME="/usr/bin/time -f %e_s_wall,_peak_RSS_%M_KB"
mkdir -p "$DIR"
[ -f "$DIR/data/dukcapil.csv" ] || "$KJP" generate --scale 1 --seed 7 --out "$DIR/data"

echo "== setup (untimed): import, verify, settle and decree, accounts"
"$KJP" import --data "$DIR/data" --force > /dev/null
"$KJP" stage open 2025 1
"$KJP" stage verify 2025/1 > /dev/null
"$KJP" bank prepare-bench --stage 2025/1
"$KJP" bank simulate-accounts --stage 2025/1 --all-active --out "$DIR/accounts.csv"
"$KJP" accounts import "$DIR/accounts.csv"

echo "== 1. the batch for every recipient, January to March (the real tahap I 2025 payment), built and recorded"
$TIME "$KJP" pay --stage 2025/1 --months 2025-01..2025-03 --format json | tee "$DIR/pay.json"
FILE=$(sed -n 's/.*"file":"\([^"]*\)".*/\1/p' "$DIR/pay.json")
echo "== 1b. the same batch again (nothing owed: the recorded batch returned)"
$TIME "$KJP" pay --stage 2025/1 --months 2025-01..2025-03 --format json

"$KJP" bank simulate-return "$FILE" --fail-rate 0.02 --out "$DIR/return.csv"
echo "== 2. the return file reconciled"
$TIME "$KJP" reconcile "$DIR/return.csv"

"$KJP" bank simulate-transactions --month 2025-02 --per-card 10 --out "$DIR/card-2025-02.csv"
echo "== 3. a month of card transactions screened and recorded"
$TIME "$KJP" transactions import "$DIR/card-2025-02.csv"
