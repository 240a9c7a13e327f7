#!/usr/bin/env bash
# Leader time and peak memory of one embedded sim job of no-op segments, through the
# real CLI (proofline-leader stdio, sim plugin, fs store, embedded worker with 2 lanes).
#
#   cargo build --release -p proofline-leader
#   scripts/bench/leader-scale.sh                    # 10,000 / 100,000 / 1,000,000 segments
#   SIZES="10000 100000" scripts/bench/leader-scale.sh
#   GPU=off scripts/bench/leader-scale.sh            # no GPU probe (default auto: on a machine
#                                                    # without a GPU, the Vulkan loader and
#                                                    # lavapipe's library still take ~55 MB)
#
# Prints one markdown row per size: wall time, user+sys CPU, peak RSS (GNU time's
# "Maximum resident set size", the whole process: leader, worker and store), and
# bytes of peak RSS per segment. See docs/BENCHMARKS.md, "A million segments".
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-10000 100000 1000000}
LEADER=${LEADER:-target/release/proofline-leader}
GPU=${GPU:-auto}
work=$(mktemp -d /tmp/proofline-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "| segments | tasks | wall | CPU (user + sys) | peak RSS | RSS per segment |"
echo "|---|---|---|---|---|---|"
for n in $SIZES; do
    echo "{\"tasks\": $n, \"cost\": {\"fixed\": {\"micros\": 0}}}" > "$work/w.json"
    rm -rf "$work/store"
    /usr/bin/time -v -o "$work/time.txt" "$LEADER" --plugin sim --lanes 2 --gpu "$GPU" --store "fs:$work/store" \
        stdio --out "$work/proof" < "$work/w.json" 2> "$work/log.txt" || { tail -5 "$work/log.txt"; exit 1; }
    wall=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')
    user=$(grep 'User time' "$work/time.txt" | awk '{print $NF}')
    sys=$(grep 'System time' "$work/time.txt" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')
    awk -v n="$n" -v wall="$wall" -v user="$user" -v sys="$sys" -v rss="$rss" 'BEGIN {
        printf "| %d | %d | %s | %.1f s | %.0f MB | %.0f B |\n", n, 2*n-1, wall, user+sys, rss/1024, rss*1024/n }'
done
