#!/usr/bin/env bash
# sid_throughput.sh — SiD distillation throughput of several pixdiff builds, interleaved so that
# each round's runs see the same machine load:
#   bench/sid_throughput.sh CHECKPOINT N ROUNDS LABEL=PIXDIFF:THREADS ...
# Run from the repository root (the default model files in models/). Every run resumes a fresh
# copy of CHECKPOINT (a `distill sid` checkpoint of models/fashion32.safetensors) for N images
# and prints `uptime`, /usr/bin/time's wall, CPU times and CPU share, and img/s = N / the
# checkpoint's `seconds` gained (iterations only, start-up excluded). After each round it says
# which runs exported a generator byte-identical to the first label's (they must all be: the
# bits do not depend on the build's share workers or on the thread count).
set -u
[ $# -ge 4 ] || { echo "usage: $0 CHECKPOINT N ROUNDS LABEL=PIXDIFF:THREADS ..." >&2; exit 2; }
ckpt=$1 n=$2 rounds=$3
shift 3
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meta() {   # meta FILE KEY: a pixdiff.sid.KEY metadata value of a checkpoint
    python3 -c "import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(json.loads(f.read(n))['__metadata__']['pixdiff.sid.' + sys.argv[2]])" "$1" "$2"
}
first=${1%%=*}
for r in $(seq 1 "$rounds"); do
    for v in "$@"; do
        label=${v%%=*} spec=${v#*=}
        bin=${spec%:*} threads=${spec##*:}
        d=$tmp/$label
        rm -rf "$d" && mkdir -p "$d" && cp "$ckpt" "$d/checkpoint.safetensors"
        s0=$(meta "$d/checkpoint.safetensors" seconds) i0=$(meta "$d/checkpoint.safetensors" images_seen)
        echo "== round $r $label: $(uptime)"
        /usr/bin/time -f "$label, $threads threads: wall %e s, user %U s, sys %S s, CPU %P" \
            "$bin" distill sid --resume --out "$d" --teacher models/fashion32.safetensors \
            --classifier models/fashion-classifier.safetensors --threads "$threads" \
            --duration $((i0 + n)) --quiet 2>&1 | tail -1
        s1=$(meta "$d/checkpoint.safetensors" seconds) i1=$(meta "$d/checkpoint.safetensors" images_seen)
        python3 -c "print('$label: %d images in %.2f s of iterations: %.2f img/s' % ($i1 - $i0, $s1 - $s0, ($i1 - $i0) / ($s1 - $s0)))"
        mv "$d/generator.safetensors" "$tmp/gen-$label.safetensors"
    done
    for v in "$@"; do
        label=${v%%=*}
        cmp -s "$tmp/gen-$first.safetensors" "$tmp/gen-$label.safetensors" &&
            echo "round $r: $label's generator is byte-identical to $first's"
    done
done
