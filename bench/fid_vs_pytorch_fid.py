#!/usr/bin/python3
"""pixdiff's FID against pytorch-fid's own fid_score on the same PNG folders and weights (the
synthetic hashed Inception weights of metrics/inception_synth.c, which torch builds from
tests/fixtures/make_inception_fixture.py; the real weights are not reachable here).

  /usr/bin/python3 bench/fid_vs_pytorch_fid.py --pytorch-fid /tmp/pytorch-fid/src \\
      --pixdiff build/pixdiff --weights W.safetensors --work /tmp/fidcmp [--n 2100]

First, the FID of the same statistics (random features, n = 2100 and 2500 > 2048) by pixdiff
(bench_fid_stats, next to the pixdiff binary) and by scipy's sqrtm as pytorch-fid computes it.
Then writes two folders of n 28x28 gray PNGs (the first n Fashion-MNIST test and train images), runs
pytorch-fid's calculate_fid_given_paths (batch 50, CPU) on them, and pixdiff eval --features
inception on the same folders (statistics of the first saved with --save-ref); prints both FIDs,
their relative difference, and scipy's FID on pixdiff's statistics against pixdiff's own value.
Needs torch, torchvision, PIL, scipy and a pytorch-fid checkout; CI runs none of it.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def fashion(split, n, data_dir):
    name = {"test": "t10k", "train": "train"}[split]
    with gzip.open(os.path.join(data_dir, name + "-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    return x[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pytorch-fid", required=True)
    ap.add_argument("--pixdiff", required=True)
    ap.add_argument("--weights", required=True, help="synthetic weights (bench_inception --write-weights)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=2100)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    sys.path.insert(0, a.pytorch_fid)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
    from PIL import Image
    import torch
    import make_inception_fixture as mf
    from pytorch_fid import fid_score, inception as pfi
    from scipy import linalg

    torch.set_num_threads(2)
    os.makedirs(a.work, exist_ok=True)
    dirs = []
    for split in ("test", "train"):
        d = os.path.join(a.work, split)
        os.makedirs(d, exist_ok=True)
        for i, img in enumerate(fashion(split, a.n, a.data_dir)):
            p = os.path.join(d, "%05d.png" % i)
            if not os.path.exists(p):
                Image.fromarray(img).save(p)
        dirs.append(d)

    # 1. The FID of the same statistics (n > 2048): pixdiff's pd_fd_gaussian against scipy's
    # sqrtm as pytorch-fid computes it, on random correlated "features" of 2100 and 2500 vectors.
    rng = np.random.default_rng(0)
    stats = []
    for k, n in enumerate((2100, 2500)):
        mix = rng.standard_normal((64, 2048)) / 8
        f = np.maximum(rng.standard_normal((n, 64)) @ mix + rng.standard_normal((n, 2048)) * 0.3 + k * 0.05, 0)
        p = os.path.join(a.work, "random%d.npz" % k)
        np.savez(p, mu=f.mean(0), sigma=np.cov(f, rowvar=False))
        stats.append(p)
    bfs = os.path.join(os.path.dirname(a.pixdiff), "bench_fid_stats")
    out = subprocess.run([bfs] + stats, check=True, capture_output=True, text=True).stdout.split()
    fid_pd_stats = float(out[1])
    s0, s1 = (np.load(p) for p in stats)
    fid_sc_stats = fid_score.calculate_frechet_distance(s0["mu"], s0["sigma"], s1["mu"], s1["sigma"])
    print("same statistics (n = 2100 vs 2500, d = 2048): pixdiff %.12g, scipy sqrtm %.12g, "
          "relative difference %.3e (pixdiff %s s)" % (fid_pd_stats, fid_sc_stats,
          abs(fid_pd_stats - fid_sc_stats) / abs(fid_sc_stats), out[3]))
    sys.stdout.flush()

    # 2. End to end on two PNG folders, each tool with its own network and statistics.
    sd = {k: torch.from_numpy(v) for k, v in mf.hashed_state_dict().items()}
    pfi.load_state_dict_from_url = lambda *x, **k: sd
    t0 = time.time()
    fid_torch = fid_score.calculate_fid_given_paths(dirs, 50, "cpu", 2048, num_workers=0)
    t_torch = time.time() - t0

    env = dict(os.environ, OMP_NUM_THREADS="2", OMP_WAIT_POLICY="passive")
    npz = [os.path.join(a.work, s + ".npz") for s in ("test", "train")]
    for p in npz:
        if os.path.exists(p):
            os.remove(p)
    t0 = time.time()
    subprocess.run([a.pixdiff, "eval", "--features", "inception", "--inception", a.weights,
                    "--images", dirs[0], "--save-ref", npz[0], "--quiet"], check=True, env=env)
    out = subprocess.run([a.pixdiff, "eval", "--features", "inception", "--inception", a.weights,
                          "--images", dirs[1], "--ref", npz[0], "--save-ref", npz[1], "--json",
                          "--quiet"], check=True, env=env, capture_output=True, text=True).stdout
    t_pd = time.time() - t0
    fid_pd = json.loads(out)["fid"]
    s = [np.load(p) for p in npz]
    fid_scipy = fid_score.calculate_frechet_distance(s[1]["mu"], s[1]["sigma"], s[0]["mu"], s[0]["sigma"])
    print("end to end, n = %d per folder%s" % (a.n, " (<= 2048: singular covariances)" if a.n <= 2048 else ""))
    print("pytorch-fid fid_score: FID %.10g (%.0f s)" % (fid_torch, t_torch))
    print("pixdiff eval:          FID %.10g (%.0f s)" % (fid_pd, t_pd))
    print("relative difference:   %.3e" % (abs(fid_pd - fid_torch) / abs(fid_torch)))
    print("scipy sqrtm on pixdiff's statistics: FID %.12g, relative difference to pixdiff's %.3e"
          % (fid_scipy, abs(fid_scipy - fid_pd) / abs(fid_scipy)))


if __name__ == "__main__":
    main()
