#!/usr/bin/env bash
# e2e_mpi.sh — pixdiff under `mpirun -np 2 --oversubscribe` on this machine against one process
# (docs/scale-out.md), run by ctest as
#   bash tests/e2e_mpi.sh <path-to-pixdiff> <source-dir>
# with PD_MPIEXEC naming the mpirun that pixdiff was built against (CMake sets it; empty when MPI
# was not found: the test then exits 77, which ctest reports as skipped).
# Checks: sample (grid, .npy, one PNG per image) and eval (--json; sampling and a PNG folder)
# identical to one process;
# sweeps identical except timing fields, in both of the ways cells spread over ranks (docs/
# scale-out.md §3): whole cells in rounds of one per rank (configs/sweeps/quick.yaml, trajectory
# references handed between ranks; a small sweep of the shipped model with FD, accuracy, spectra
# and grids, on 2 ranks and on 3, where the last cell is split) and cells split by image (large
# cells, with references); a rank killed with SIGKILL mid-sweep fails the job, the folder lock
# holds meanwhile, and a re-run resumes to the one-process results;
# train (configs/train/tiny.yaml), distill sid and distill amed (tiny nets) bit-identical to one
# process, and a training run resumed on another number of ranks too. Prints "N passed, M failed".
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
if [ -z "${PD_MPIEXEC:-}" ]; then
    echo "skipped: pixdiff was built without MPI (CMake found none)"
    exit 77
fi
e2e_init e2e_mpi.sh "$@"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
# Containers often forbid the cross-memory attach that OpenMPI's shared-memory transport tries
# first; plain copies work everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under `make sanitize` LeakSanitizer must see whole allocation stacks to tell OpenMPI's own
# never-freed memory (suppressed in tests/sanitize/lsan.supp by library) from pixdiff's: OpenMPI
# is built without frame pointers, where ASan's fast unwinder stops. An unsanitized build ignores
# ASAN_OPTIONS.
if [ -n "${ASAN_OPTIONS:-}" ]; then export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"; fi
MPI=("$PD_MPIEXEC" --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
MODEL=$SRC/models/fashion32.safetensors

# strip_timing FILE: a sweep's results.jsonl/csv/md without the fields that hold wall times.
TIMING='seconds|seconds_denoiser|seconds_metrics|samples_per_s|outside_denoiser|finished'
strip_timing() {
    case $1 in
    *.jsonl) sed -E "s/\"($TIMING)\": [^,}]*//g" "$1" ;;
    *.csv) # commas inside quoted fields become ';' so that awk can split the columns
        sed -E ':a; s/^(([^"]*"[^"]*")*[^"]*"[^",]*),/\1;/; ta' "$1" |
            awk -F, -v keys="$TIMING" 'BEGIN { n = split(keys, k, "|"); for (i = 1; i <= n; i++) t[k[i]] = 1 }
                NR == 1 { for (i = 1; i <= NF; i++) drop[i] = ($i in t) }
                { for (i = 1; i <= NF; i++) if (drop[i]) $i = ""; print }' OFS=, ;;
    *.md) awk -F'|' 'BEGIN { t["seconds"] = t["images/s"] = t["outside denoiser"] = 1 }
                /^\| / && !hdr { for (i = 1; i <= NF; i++) { c = $i; gsub(/^ +| +$/, "", c); drop[i] = (c in t) } hdr = 1 }
                /^$/ { hdr = 0 }
                /^\|/ { for (i = 1; i <= NF; i++) if (drop[i]) $i = "" }
                { print }' OFS='|' "$1" ;;
    esac
}
# png_pixels FILE: a PNG from its first IDAT chunk on (a grid's text chunk, with the cell's
# timings, comes before it).
png_pixels() { tail -c +$(($(grep -abo IDAT "$1" | head -1 | cut -d: -f1) + 1)) "$1"; }

# same_sweep NAME DIR1 DIR2: the sweep folders hold the same results, plots, grids, references.
same_sweep() {
    local name=$1 a=$2 b=$3 f diff=
    for f in results.jsonl results.csv results.md; do
        [ -s "$a/$f" ] && cmp -s <(strip_timing "$a/$f") <(strip_timing "$b/$f") || diff="$diff $f"
    done
    for f in $(cd "$a" && find . -name '*.png' -o -name '*.npy' -o -name '*.key' | sort); do
        case $f in
        ./grids/*) cmp -s <(png_pixels "$a/$f") <(png_pixels "$b/$f") || diff="$diff $f" ;;
        *) cmp -s "$a/$f" "$b/$f" || diff="$diff $f" ;;
        esac
    done
    [ "$(cd "$a" && find . -type f | sort)" = "$(cd "$b" && find . -type f | sort)" ] || diff="$diff (file lists)"
    if [ -z "$diff" ]; then ok "$name"; else bad "$name: differs in$diff"; fi
}

# 0. The launcher works at all here (else every check below would fail for the same reason).
if ! "${MPI[@]}" "$PD" --version >ver.out 2>&1 || [ "$(grep -c '^pixdiff ' ver.out)" -ne 2 ]; then
    bad "mpirun -np 2 pixdiff --version" ver.out
    e2e_finish
    exit
fi
ok "mpirun -np 2 starts two ranks"

# 1. sample: a grid with its .npy, and one PNG per image (class cycle, batch 3 splitting oddly).
S=(sample --model "$MODEL" --n 7 --batch 3 --steps 2 --class cycle --seed 5 --quiet)
mkdir -p one two
(cd one && "$PD" "${S[@]}" --out g.png --output-npy x.npy && "$PD" "${S[@]}" --outdir d) >s1.out 2>&1
(cd two && "${MPI[@]}" "$PD" "${S[@]}" --out g.png --output-npy x.npy &&
    "${MPI[@]}" "$PD" "${S[@]}" --outdir d) >s2.out 2>&1 || bad "sample under mpirun" s2.out
same "sample: grid PNG (with its metadata) identical" one/g.png two/g.png
same "sample: .npy identical" one/x.npy two/x.npy
n=0
for f in one/d/*.png; do cmp -s "$f" "two/d/$(basename "$f")" && n=$((n + 1)); done
if [ $n -eq 7 ] && [ "$(ls two/d | wc -l)" -eq 7 ]; then ok "sample --outdir: 7 PNGs identical"
else bad "sample --outdir: $n of 7 identical"; fi

# 2. eval: every number but the wall times.
E=(eval --model "$MODEL" --n 10 --batch 4 --steps 2 --ref-steps 4 --seed 2 --json --quiet)
"$PD" "${E[@]}" >e1.json 2>e1.err || bad "eval, one process" e1.err
"${MPI[@]}" "$PD" "${E[@]}" >e2.json 2>e2.err || bad "eval under mpirun" e2.err
untimed() { sed -E 's/"(wall_s|sampling_s|metrics_s|reference_s)": [^,}]*//g' "$1"; }
if grep -q '"fd": [0-9]' e1.json && cmp -s <(untimed e1.json) <(untimed e2.json); then
    ok "eval --json identical but for wall times"
else bad "eval: outputs differ" e2.json; fi
# eval of a PNG folder: rank 0 alone measures, the other ranks only free what they loaded (under
# `make sanitize` a rank that returned early leaked its classifier and model).
"$PD" eval --images one/d --json --quiet >e3.json 2>e3.err || bad "eval --images, one process" e3.err
"${MPI[@]}" "$PD" eval --images one/d --json --quiet >e4.json 2>e4.err || bad "eval --images under mpirun" e4.err
if grep -q '"fd": [0-9]' e3.json && cmp -s <(untimed e3.json) <(untimed e4.json); then
    ok "eval --images identical but for wall times"
else bad "eval --images: outputs differ" e4.json; fi

# 3. The quick sweep (analytic data, trajectory error against cached references); while the
#    ranks run, a second sweep into their folder must find it locked.
Q=$SRC/configs/sweeps/quick.yaml
"$PD" sweep "$Q" --out q1 --threads 1 --quiet >q1.out 2>&1 || bad "quick sweep" q1.out
"${MPI[@]}" "$PD" sweep "$Q" --out q2 --threads 1 --quiet >q2.out 2>&1 &
job=$!
for _ in $(seq 1200); do [ -s q2/results.jsonl ] && break; sleep 0.05; done
if ! "$PD" sweep "$Q" --out q2 --threads 1 >lock.out 2>&1 &&
    grep -q "another pixdiff sweep is writing to this folder" lock.out; then
    ok "the folder lock holds against another sweep while the ranks run"
else bad "a second sweep into the folder of the running job" lock.out; fi
wait $job || bad "quick sweep under mpirun" q2.out
same_sweep "quick sweep: results, plots and references identical except timings" q1 q2

# 4. A small sweep of the shipped model: FD, accuracy, spectra, grids; then a rank killed
#    mid-sweep and the re-run.
cat >small.yaml <<EOF
name: mpi-small
model: $MODEL
classifier: $SRC/models/fashion-classifier.safetensors
samplers: [euler, heun]
nfe: [3, 5]
n: 8
seed: 3
batch: 4
metrics: [fd, accuracy, spectral]
save_grid: true
EOF
"$PD" sweep small.yaml --out m1 --threads 1 --quiet >m1.out 2>&1 || bad "model sweep" m1.out
"${MPI[@]}" "$PD" sweep small.yaml --out m2 --threads 1 --quiet >m2.out 2>&1 || bad "model sweep under mpirun" m2.out
same_sweep "model sweep (2 rounds of whole cells): results, plots and grids identical except timings" m1 m2
# Three ranks: one round of three whole cells, then the last cell split over the ranks.
MPI3=("${MPI[@]}")
MPI3[3]=3
"${MPI3[@]}" "$PD" sweep small.yaml --out m4 --threads 1 --quiet >m4.out 2>&1 || bad "model sweep on 3 ranks" m4.out
same_sweep "model sweep on 3 ranks (a round, then a split cell): identical except timings" m1 m4

# 4b. Large cells (n >= 8 x ranks x batch) keep the split of each cell's images, the trajectory
#     references included.
cat >large.yaml <<EOF
name: mpi-large
model: analytic:gaussian:res=8:ch=1:std=0.5
samplers: [euler, dpmpp-2m]
nfe: [3, 6]
n: 16
seed: 4
batch: 1
metrics: [trajectory]
EOF
"$PD" sweep large.yaml --out l1 --threads 1 --quiet >l1.out 2>&1 || bad "large-cell sweep" l1.out
"${MPI[@]}" "$PD" sweep large.yaml --out l2 --threads 1 --quiet >l2.out 2>&1 || bad "large-cell sweep under mpirun" l2.out
same_sweep "large cells split by image: results and references identical except timings" l1 l2

"${MPI[@]}" "$PD" sweep small.yaml --out m3 --threads 1 --quiet >m3.out 2>&1 &
job=$!
for _ in $(seq 1200); do [ -s m3/results.jsonl ] && break; sleep 0.05; done
victim=$(pgrep -P $job -f 'pixdiff sweep' | tail -1)
[ -z "$victim" ] && victim=$(pgrep -f "pixdiff sweep small.yaml --out m3" | grep -v "^$job\$" | tail -1)
kill -9 "$victim" 2>/dev/null
wait $job
rc=$?
cells_before=$(grep -c . m3/results.jsonl 2>/dev/null)
if [ $rc -ne 0 ] && [ "$cells_before" -ge 1 ] && [ "$cells_before" -lt 4 ]; then
    ok "a rank killed after $cells_before of 4 cells: the job fails (exit $rc)"
else bad "kill one rank mid-sweep: exit $rc after $cells_before cells" m3.out; fi
if "${MPI[@]}" "$PD" sweep small.yaml --out m3 --threads 1 --quiet >m3b.out 2>&1; then
    ok "the re-run under mpirun finishes"
else bad "re-run after the kill" m3b.out; fi
same_sweep "killed and resumed sweep: results identical to one process" m1 m3

# 5. train: the tiny config, one process against two ranks, and a resume on another rank count.
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    CFG=$SRC/configs/train/tiny.yaml
    "$PD" train --config "$CFG" --out T1 --duration 32 --quiet >t1.out 2>&1 || bad "train" t1.out
    "${MPI[@]}" "$PD" train --config "$CFG" --out T2 --duration 32 --threads 1 --quiet >t2.out 2>&1 ||
        bad "train under mpirun" t2.out
    same "train: 2 ranks give the one-process model bit for bit" T1/model.safetensors T2/model.safetensors
    cut -d, -f1,2,4,6,7 T1/training-log.csv >log1.csv    # all but hours and img/s
    cut -d, -f1,2,4,6,7 T2/training-log.csv >log2.csv
    same "train: and the same training log (timings aside)" log1.csv log2.csv
    "$PD" train --config "$CFG" --out T3 --duration 16 --quiet >t3.out 2>&1 &&
        "${MPI[@]}" "$PD" train --config "$CFG" --out T3 --duration 32 --threads 1 --resume --quiet \
            >t3b.out 2>&1 || bad "train resumed under mpirun" t3b.out
    same "train: 1 process then resumed on 2 ranks gives the same model" T1/model.safetensors \
        T3/model.safetensors
else
    echo "skipped the training checks: Fashion-MNIST is not installed (dataset-fashion-mnist)"
fi

# 6. distill sid and distill amed on a tiny random class-conditional teacher.
printf 'preset: tiny\nlabel_dim: 3\ndropout: 0.1\n' >teacher.yaml
"$PD" init --config teacher.yaml --seed 3 --out teacher.safetensors --quiet || bad "init teacher"
printf 'ema:\n  halflife_images: 64\ntraining:\n  batch: 8\n  checkpoint_images: 16\n  seed: 9\n' >sid.yaml
D=(distill sid --config sid.yaml --teacher teacher.safetensors --duration 32 --quiet)
"$PD" "${D[@]}" --out G1 >g1.out 2>&1 || bad "distill sid" g1.out
"${MPI[@]}" "$PD" "${D[@]}" --out G2 --threads 1 >g2.out 2>&1 || bad "distill sid under mpirun" g2.out
same "distill sid: 2 ranks give the one-process generator bit for bit" G1/generator.safetensors \
    G2/generator.safetensors
A=(distill amed --model teacher.safetensors --nfe 3 --plugin ipndm --batch 6 --images 12 --quiet)
"$PD" "${A[@]}" --out a1.safetensors >a1.out 2>&1 || bad "distill amed" a1.out
"${MPI[@]}" "$PD" "${A[@]}" --out a2.safetensors --threads 1 >a2.out 2>&1 || bad "distill amed under mpirun" a2.out
same "distill amed: 2 ranks give the one-process predictor bit for bit" a1.safetensors a2.safetensors

e2e_finish
