#!/usr/bin/python3
"""torchvision's Inception-v3 in PyTorch on the CPU, the comparison for bench_inception
(docs/benchmarks.md, "FID Inception"): images/s of a forward pass at batch B on 3 x 299 x 299
inputs (no_grad, eval mode, random init: speed does not depend on the weights), best of R rounds,
plus the process's CPU seconds per image. With --pytorch-fid SRC, pytorch-fid's FID InceptionV3
instead (its resize from 32 x 32 included, features up to pool3 only, as fid_score runs it).

  /usr/bin/python3 bench/torch_inception.py --threads 2 --batch 50 --rounds 3
"""
import argparse
import sys
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pytorch-fid", help="pytorch-fid's src/ directory: time its FID InceptionV3")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.pytorch_fid:
        sys.path.insert(0, a.pytorch_fid)
        from pytorch_fid import inception as pfi
        base = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None,
                                               init_weights=False)
        pfi.load_state_dict_from_url = lambda *x, **k: base.state_dict()
        net = pfi.InceptionV3([3]).eval()
        x = torch.rand(a.batch, 3, 32, 32)
        what = "pytorch-fid InceptionV3 (resize from 32x32, pool3)"
    else:
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
        x = torch.rand(a.batch, 3, 299, 299) * 2 - 1
        what = "torchvision inception_v3 (299x299, to the logits)"
    best = 1e30
    with torch.no_grad():
        net(x[:2])
        for r in range(a.rounds):
            t0, c0 = time.time(), time.process_time()
            net(x)
            dt, dc = time.time() - t0, time.process_time() - c0
            print("round %d: %.2f img/s, %.3f CPU s/image" % (r + 1, a.batch / dt, dc / a.batch))
            best = min(best, dt)
    print("%s, batch %d, %d threads, torch %s: %.2f img/s (best of %d)"
          % (what, a.batch, a.threads, torch.__version__, a.batch / best, a.rounds))


if __name__ == "__main__":
    main()
