#!/bin/bash
# alternate.sh — pixdiff against EDM's own network on one model file, alternated ROUNDS times, for
# the ratios that one pass of side_by_side.sh cannot settle: this VM moves between a fast and a
# slow state within minutes, so a single pair can land on different states (docs/benchmarks.md,
# "Session 16"). Prints each round's ms per image and the median ratio per batch size.
#
#   bash bench/alternate.sh MODEL EDM_CHECKOUT [ROUNDS] [BATCHES] [THREADS]
#
# pixdiff: build/bench_nets with OpenBLAS's own kernels (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset
# for that command); PyTorch: bench/torch_edm_nets.py --edm, EDM's networks.py at PyTorch's
# default (spinning) wait policy, its faster one at small batches. A 20 s pause before each
# measurement (see side_by_side.sh), and build/pingpong's CPU 0 <-> 1 round trip printed just before
# it ("rt NNN ns": about 60 when the vCPUs share a cache, about 330 when not; docs/threads.md §5).
# Checks nothing.
set -u
MODEL=${1:?usage: alternate.sh MODEL EDM_CHECKOUT [ROUNDS] [BATCHES] [THREADS]}
EDM=${2:?usage: alternate.sh MODEL EDM_CHECKOUT [ROUNDS] [BATCHES] [THREADS]}
ROUNDS=${3:-3}
BATCHES=${4:-1,8}
T=${5:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp) || exit 1
trap 'rm -f "$TMP"' EXIT
echo "== $(date -u), $(git -C "$ROOT" rev-parse --short HEAD), $MODEL, threads $T, $ROUNDS rounds"
rt() { "$ROOT/build/pingpong" | awk '{ printf "rt %s ns  ", $(NF - 1) }'; }
for r in $(seq "$ROUNDS"); do
    sleep 20
    rt
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=passive \
        "$ROOT/build/bench_nets" "$MODEL" "$T" 5 "$BATCHES" |
        awk -v r="$r" '/^batch/ { print r, "pixdiff", $2 + 0, $4 }' | tee -a "$TMP"
    sleep 20
    rt
    env -u OMP_WAIT_POLICY /usr/bin/python3 "$ROOT/bench/torch_edm_nets.py" "$MODEL" --threads "$T" \
        --batches "$BATCHES" --repeat 5 --edm "$EDM" 2>/dev/null |
        awk -v r="$r" '/^EDM networks.py: forward batch/ { print r, "edm", $5 + 0, $7 }' | tee -a "$TMP"
done
# the median over rounds of EDM / pixdiff, per batch size
awk '{ t[$1 " " $2 " " $3] = $4; b[$3] = 1; if ($1 > n) n = $1 }
     END { for (bs in b) { m = 0
             for (r = 1; r <= n; r++) if ((r " pixdiff " bs) in t && (r " edm " bs) in t)
                 q[++m] = t[r " edm " bs] / t[r " pixdiff " bs]
             for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (q[j] < q[i]) { x = q[i]; q[i] = q[j]; q[j] = x }
             s = ""; for (i = 1; i <= m; i++) s = s sprintf(" %.2f", q[i])
             if (m) printf "batch %s: EDM / pixdiff per round, sorted:%s; median %.2fx\n", bs, s,
                           m % 2 ? q[(m + 1) / 2] : (q[m / 2] + q[m / 2 + 1]) / 2 } }' "$TMP"
