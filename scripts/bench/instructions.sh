#!/usr/bin/env bash
# Instructions per no-op task (valgrind/callgrind on a portable build), and where they go.
#
#   scripts/bench/instructions.sh            # build target/portable, count 2,000 vs 10,000 segments
#   SIZES=1000,5000 TOP=40 scripts/bench/instructions.sh
#
# Perf counters are unavailable on the development VMs, and valgrind cannot decode the
# default -C target-cpu=native build (AVX-512): this builds a x86-64-v2 copy in
# target/portable (a cold build: several minutes on 2 cores) and counts that. Compare
# its figures only with each other. See docs/BENCHMARKS.md, "Instructions per task".
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-2000,10000}
TOP=${TOP:-30}
OUT=${OUT:-target/callgrind}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
RUSTFLAGS="-C target-cpu=x86-64-v2" CARGO_TARGET_DIR=target/portable \
    cargo build --release -j2 -p proofline-bench
exe=target/portable/release/proofline-bench
"$exe" runtime --reps 0 --count-instructions --instructions-exe "$exe" \
    --instructions-sizes "$SIZES" --instructions-dir "$OUT"
large=${SIZES#*,}
echo
echo "Top $TOP functions by exclusive instructions ($large segments; the run includes start-up):"
callgrind_annotate --threshold=99 "$OUT/callgrind.$large.out" | sed -n '/^Ir/,$p' | head -n "$((TOP + 2))"
