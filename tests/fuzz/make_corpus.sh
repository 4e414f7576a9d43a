#!/usr/bin/env bash
# make_corpus.sh — regenerates the seed corpora of tests/fuzz/corpus/<harness>/ (a few small
# valid files per reader; libFuzzer mutates from there). Needs a built pixdiff (for the model
# and checkpoint seeds, trained for 4 images on Fashion-MNIST), python3 and numpy:
#   tests/fuzz/make_corpus.sh [build/pixdiff]
set -euo pipefail
cd "$(dirname "$0")/../.."
PD=$(realpath "${1:-build/pixdiff}")
C=tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$C"
mkdir -p "$C"/{safetensors,model,model_config,predictor,checkpoint,npy,png,csv,idx,yamldoc}
mkdir -p "$C"/{yaml_sweep,yaml_train,yaml_distill,yaml_arch}

# A 4-channel one-level SongUNet, trained 4 images: a model (16 KB), its training checkpoint,
# and a SiD checkpoint distilled from it for 2 images.
cat >"$T/micro.yaml" <<YAML
model: {preset: fashion32, model_channels: 4, channel_mult: [1], num_blocks: 1,
        attn_resolutions: [], channel_mult_emb: 1}
data: {kind: fashion-mnist}
training: {batch: 2, duration_images: 4, checkpoint_images: 4, seed: 1, threads: 1}
output: {dir: $T/run}
YAML
OMP_WAIT_POLICY=passive "$PD" train --config "$T/micro.yaml" >/dev/null 2>&1
sed -e 's/batch: 32 .*/batch: 2/; s/checkpoint_images: 6400.*/checkpoint_images: 2/' \
    -e 's/snapshot_images: 200000.*/snapshot_images: 1000/; s/fd_images: 20000.*/fd_images: 100000/' \
    configs/distill/sid-fashion32.yaml >"$T/sid.yaml"
OMP_WAIT_POLICY=passive "$PD" distill sid --config "$T/sid.yaml" --teacher "$T/run/model.safetensors" \
    --out "$T/sid" --duration 2 --threads 1 --quiet >/dev/null 2>&1
cp "$T/run/model.safetensors" "$C/model/micro.safetensors"
cp "$T/sid/generator.safetensors" "$C/model/micro-generator.safetensors"
cp "$T/run/checkpoint.safetensors" "$C/checkpoint/train.safetensors"
cp "$T/sid/checkpoint.safetensors" "$C/checkpoint/sid.safetensors"
cp "$T/run/model.safetensors" "$C/safetensors/micro.safetensors"
cp models/fashion32-amed-nfe3.safetensors models/fashion32-amed-ipndm-nfe4.safetensors "$C/predictor/"
cp "$T/run/training-log.csv" "$C/csv/training-log.csv"
cp "$T/sid/sid-log.csv" "$C/csv/sid-log.csv"
cp configs/sweeps/quick.yaml configs/sweeps/fashion32-skip-rho.yaml "$C/yaml_sweep/"
cp configs/train/tiny.yaml configs/train/fashion-classifier.yaml "$C/yaml_train/"
cp configs/distill/sid-fashion32.yaml "$C/yaml_distill/"
cp "$T/micro.yaml" "$C/yaml_train/micro.yaml"
OMP_WAIT_POLICY=passive "$PD" sample --model analytic:gaussian:res=8:ch=1:std=0.5 --n 2 --steps 2 \
    --out "$C/png/pixdiff-grid.png" >/dev/null 2>&1

/usr/bin/python3 - "$C" <<'PY'
import gzip, io, json, struct, sys, zlib
import numpy as np
C = sys.argv[1]

def put(path, data):
    with open(f"{C}/{path}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# safetensors: F32, F16 and BF16 tensors, metadata, an empty tensor.
def st(tensors, meta):
    hdr, off, blob = {"__metadata__": meta}, 0, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw); blob += raw
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob
a = np.arange(6, dtype=np.float32)
put("safetensors/mixed.safetensors", st([("a", "F32", [2, 3], a.tobytes()),
    ("h", "F16", [3], a[:3].astype(np.float16).tobytes()),
    ("b", "BF16", [2], (a[:2].view(np.uint32) >> 16).astype(np.uint16).tobytes()),
    ("e", "F32", [0], b"")], {"format": "pt", "note": "caf\u00e9 \U0001F600"}))

# model configs (the pixdiff.config JSON of the shipped models, as text).
for name in ("fashion32", "fashion-classifier"):
    with open(f"models/{name}.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        put(f"model_config/{name}.json", json.loads(f.read(n))["__metadata__"]["pixdiff.config"])

# npy: rank 1..4, format 1.0 and 2.0.
def npy(x, version=1):
    b = io.BytesIO(); np.lib.format.write_array(b, x, version=(version, 0)); return b.getvalue()
put("npy/r4.npy", npy(np.ones((1, 1, 2, 2), np.float32)))
put("npy/r1.npy", npy(np.arange(3, dtype=np.float32)))
put("npy/v2.npy", npy(np.zeros((2, 3), np.float32), 2))

# PNG: palette + tRNS, 16-bit RGBA, 1-bit gray, interlaced gray+alpha, text of every kind.
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
def png(w, h, depth, color, rows, extra=b"", interlace=0, after=b""):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
            + extra + chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows))) + after + chunk(b"IEND", b""))
put("png/palette-trns.png", png(3, 1, 8, 3, [bytes([0, 1, 2])],
    chunk(b"PLTE", bytes([255, 0, 0, 0, 10, 200, 7, 8, 9])) + chunk(b"tRNS", b"\xff\x00")))
put("png/rgba16.png", png(2, 1, 16, 6, [bytes(range(16))], chunk(b"tEXt", b"parameters\0Steps: 3")))
put("png/gray1.png", png(3, 2, 1, 0, [b"\xa0", b"\x40"],
    chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"compressed text"))))
put("png/ga-text-after.png", png(1, 1, 8, 4, [b"\x10\x20"], after=chunk(b"iTXt",
    b"pixdiff\0\x01\0en\0pixdiff\0" + zlib.compress(b'{"seed": 1}'))))

# CSV with quoted fields and a NaN column.
put("csv/results.csv", 'sampler,nfe,fd,note\nheun,5,1.5,"a, ""quoted"" note"\neuler,3,,\r\n')

# IDX: images (plain) and labels (gzip).
put("idx/images.idx", struct.pack(">IIII", 0x803, 2, 2, 2) + bytes(range(8)))
put("idx/labels.idx.gz", gzip.compress(struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])))

# YAML and JSON texts for the tree itself; architecture configs.
put("yamldoc/anchors.yaml", "a: &x {k: [1, 2.5, .inf]}\nb: *x\nc: 'q'\nd: yes\n")
put("yamldoc/header.json", '{"__metadata__": {"a": "b"}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
put("yaml_arch/preset.yaml", "preset: fashion32\nmodel_channels: 8\nchannel_mult: [1, 2]\nnum_blocks: 1\nattn_resolutions: [16]\n")
put("yaml_arch/classifier.yaml", "arch: classifier\nkind: classifier\nimg_resolution: 32\nin_channels: 1\n"
    "out_channels: 10\nlabel_dim: 10\nmodel_channels: 8\nchannel_mult: [1, 2]\nnum_blocks: 1\n")
PY
du -sh "$C"; find "$C" -type f | wc -l

# convert's readers and FID statistics: torch.save (zip and legacy), a plain pickle, zips, .npz.
mkdir -p "$C"/{torchfile,zip,npz}
/usr/bin/python3 - "$C" <<'PY'
import io, pickle, sys, zipfile
import numpy as np, torch
C = sys.argv[1]
sd = {"w": torch.arange(4, dtype=torch.float32).reshape(2, 2), "b": torch.zeros(2, dtype=torch.float16)}
torch.save(sd, f"{C}/torchfile/state.pt")
torch.save(sd, f"{C}/torchfile/legacy.pt", _use_new_zipfile_serialization=False)
with open(f"{C}/torchfile/plain.pkl", "wb") as f:
    pickle.dump({"kwargs": {"img_resolution": 32, "channel_mult": [1, 2]}, "x": 2.5, "s": "str"}, f, protocol=4)
torch.save(sd, f"{C}/zip/state.pt")
with zipfile.ZipFile(f"{C}/zip/deflated.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.txt", "hello " * 20)
    z.writestr("dir/b.bin", bytes(range(64)))
np.savez(f"{C}/npz/stats.npz", mu=np.zeros(2), sigma=np.eye(2))
np.savez_compressed(f"{C}/npz/stats-deflated.npz", mu=np.ones(3), sigma=np.eye(3) * 2)
PY
du -sh "$C"
