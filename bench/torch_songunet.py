#!/usr/bin/python3
"""Peer benchmark: the same DDPM++ (SongUNet) architecture in PyTorch CPU, for docs/benchmarks.md.

Our own compact PyTorch implementation of the architecture in docs/algorithms.md §M4.5 (EDM
preconditioning, positional embedding, UNetBlocks with GroupNorm/SiLU/3x3 convs, attention at the
listed resolutions), with random weights. It times what pixdiff's `pixdiff bench` times: one
denoiser evaluation per batch (forward), and a training step (forward + backward), reporting the
median of several runs in ms per image. Not used by any test; run with Debian's python3-torch:

    /usr/bin/python3 bench/torch_songunet.py --preset ref64 --threads 2
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import median_ms

PRESETS = {
    # name: (model_channels, channel_mult, num_blocks, attn_resolutions, img_channels, label_dim)
    "ref64": (64, [1, 2, 2], 2, [8], 1, 0),
    "fashion32": (32, [1, 2, 2], 2, [8], 1, 10),
    "cifar10": (128, [2, 2, 2], 4, [16], 3, 0),
}


DROPOUT = 0.1   # the training step's dropout (configs/train/fashion32.yaml); --dropout sets it


def groups(c):
    return min(32, c // 4)


class Block(nn.Module):
    def __init__(self, cin, cout, emb, up=False, down=False, attn=False):
        super().__init__()
        self.up, self.down, self.attn = up, down, attn
        self.norm0 = nn.GroupNorm(groups(cin), cin, eps=1e-6)
        self.conv0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.affine = nn.Linear(emb, cout)
        self.norm1 = nn.GroupNorm(groups(cout), cout, eps=1e-6)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or up or down) else None
        if attn:
            self.norm2 = nn.GroupNorm(groups(cout), cout, eps=1e-6)
            self.qkv = nn.Conv2d(cout, 3 * cout, 1)
            self.proj = nn.Conv2d(cout, cout, 1)

    def resample(self, x):
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x, emb):
        s = 0.5 ** 0.5
        h = self.conv0(self.resample(F.silu(self.norm0(x))))
        h = F.silu(self.norm1(h + self.affine(emb)[:, :, None, None]))
        h = self.conv1(F.dropout(h, p=DROPOUT, training=self.training))   # EDM's UNetBlock
        sk = self.resample(x)
        if self.skip is not None:
            sk = self.skip(sk)
        h = (h + sk) * s
        if self.attn:
            n, c, hh, ww = h.shape
            q, k, v = self.qkv(self.norm2(h)).reshape(n, c, 3, hh * ww).unbind(2)
            w = torch.softmax(torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(c), dim=2)
            a = torch.einsum("nqk,nck->ncq", w, v).reshape(n, c, hh, ww)
            h = (self.proj(a) + h) * s
        return h


class SongUNet(nn.Module):
    def __init__(self, res, mc, mult, nb, attn, cimg, label_dim):
        super().__init__()
        emb = mc * 4
        self.mc, self.label_dim = mc, label_dim
        self.map_label = nn.Linear(label_dim, mc) if label_dim else None
        self.map0, self.map1 = nn.Linear(mc, emb), nn.Linear(emb, emb)
        self.enc, self.dec = nn.ModuleList(), nn.ModuleList()
        self.enc_kind, self.dec_kind = [], []
        skips, c = [], cimg
        for lvl, m in enumerate(mult):
            r = res >> lvl
            if lvl == 0:
                self.enc.append(nn.Conv2d(c, mc, 3, padding=1)); self.enc_kind.append("conv"); c = mc
            else:
                self.enc.append(Block(c, c, emb, down=True)); self.enc_kind.append("blk")
            skips.append(c)
            for _ in range(nb):
                self.enc.append(Block(c, mc * m, emb, attn=r in attn)); self.enc_kind.append("blk")
                c = mc * m
                skips.append(c)
        for lvl in reversed(range(len(mult))):
            r = res >> lvl
            if lvl == len(mult) - 1:
                self.dec.append(Block(c, c, emb, attn=True)); self.dec_kind.append("in")
                self.dec.append(Block(c, c, emb)); self.dec_kind.append("in")
            else:
                self.dec.append(Block(c, c, emb, up=True)); self.dec_kind.append("in")
            for i in range(nb + 1):
                cin = c + skips.pop()
                c = mc * mult[lvl]
                self.dec.append(Block(cin, c, emb, attn=(i == nb and r in attn))); self.dec_kind.append("cat")
        self.out_norm = nn.GroupNorm(groups(c), c, eps=1e-6)
        self.out_conv = nn.Conv2d(c, cimg, 3, padding=1)

    def forward(self, x, sigma, labels=None):
        sd = 0.5
        c_in = 1 / torch.sqrt(sigma ** 2 + sd ** 2)
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / torch.sqrt(sigma ** 2 + sd ** 2)
        c_noise = sigma.log() / 4
        half = self.mc // 2
        freqs = (1 / 10000) ** (torch.arange(half, dtype=torch.float32) / (half - 1))
        a = c_noise[:, None] * freqs[None]
        e = torch.cat([a.sin(), a.cos()], dim=1)
        if self.map_label is not None and labels is not None:
            e = e + self.map_label(labels * math.sqrt(self.label_dim))
        emb = F.silu(self.map1(F.silu(self.map0(e))))
        h, skips = x * c_in[:, None, None, None], []
        for kind, mod in zip(self.enc_kind, self.enc):
            h = mod(h) if kind == "conv" else mod(h, emb)
            skips.append(h)
        for kind, mod in zip(self.dec_kind, self.dec):
            if kind == "cat":
                h = torch.cat([h, skips.pop()], dim=1)
            h = mod(h, emb)
        f = self.out_conv(F.silu(self.out_norm(h)))
        return c_skip[:, None, None, None] * x + c_out[:, None, None, None] * f


def main():
    global DROPOUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="ref64", choices=PRESETS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--train-batch", type=int, default=64, help="0: no training step")
    ap.add_argument("--dropout", type=float, default=DROPOUT, help="the training step's dropout")
    args = ap.parse_args()
    DROPOUT = args.dropout
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mc, mult, nb, attn, cimg, ld = PRESETS[args.preset]
    net = SongUNet(32, mc, mult, nb, attn, cimg, ld)
    print(f"torch {torch.__version__}, threads {args.threads}, preset {args.preset}, "
          f"params {sum(p.numel() for p in net.parameters())}")
    net.eval()
    for b in map(int, args.batches.split(",")):
        x, s = torch.randn(b, cimg, 32, 32), torch.full((b,), 2.0)
        best, cpu = {}, {}
        with torch.no_grad():
            best["eager"], cpu["eager"] = median_ms(lambda: net(x, s), args.repeat)
            cl = net.to(memory_format=torch.channels_last)
            xc = x.to(memory_format=torch.channels_last)
            best["channels_last"], cpu["channels_last"] = median_ms(lambda: cl(xc, s), args.repeat)
            net.to(memory_format=torch.contiguous_format)
            frozen = torch.jit.freeze(torch.jit.trace(net, (x, s)).eval())
            best["torchscript_frozen"], cpu["torchscript_frozen"] = median_ms(lambda: frozen(x, s),
                                                                              args.repeat)
        mode = min(best, key=best.get)
        print(f"forward batch {b:3d}: {best[mode] / b:8.2f} ms/image (best: {mode}; "
              + ", ".join(f"{k} {v / b:.2f}" for k, v in best.items())
              + f"; CPU ms/image of the best: {cpu[mode] / b:.2f})")
    if args.train_batch <= 0:
        return
    net.train()
    b = args.train_batch
    x, s, y = torch.randn(b, cimg, 32, 32), torch.rand(b) * 5 + 0.1, torch.randn(b, cimg, 32, 32)
    lab = F.one_hot(torch.randint(0, ld, (b,)), ld).float() if ld else None
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ((net(x, s, lab) - y) ** 2).mean()
        loss.backward()
        opt.step()

    ms, _ = median_ms(step, args.repeat)
    print(f"train step batch {b}: {ms / b:8.2f} ms/image ({1e3 * b / ms:.1f} img/s)")


if __name__ == "__main__":
    main()
