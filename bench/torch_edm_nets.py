#!/usr/bin/python3
"""Peer benchmark: EDM's NCSN++ (SongUNet) and ADM (DhariwalUNet) in PyTorch CPU, with the
weights of a pixdiff model file, for docs/benchmarks.md.

Our own compact PyTorch implementation of the two architectures (Karras et al. 2022; it does
not import EDM's code), with EDM's state-dict names, so it loads the safetensors file that
`pixdiff init --preset edm-cifar10-ncsnpp|edm-imagenet64-adm` (or `pixdiff convert`) writes and
runs the same network with the same weights. It first checks its D(x; sigma) against
`pixdiff denoise` on the same input (max relative difference printed), then times one denoiser
evaluation at each batch size (median of --repeat runs, wall and process-CPU ms per image; on a
shared machine the single-thread CPU time measures the work) and reports the peak resident
memory of the process. With --edm PATH it also times EDM's own networks.py (from an
NVlabs/edm checkout) on the same weights (with --bf16 also under bf16 autocast), and with
--train-batch B also EDM's own training step (its training loop's body: EDMLoss, backward, Adam,
EMA) at batch B, the peer of `pixdiff train` on a model of the same configuration. Not used by any test; run with Debian's python3-torch:

    pixdiff init --preset edm-imagenet64-adm --out adm.safetensors
    /usr/bin/python3 bench/torch_edm_nets.py adm.safetensors --threads 2 --batches 1,8
"""
import argparse
import json
import math
import os
import resource
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from timing import median_ms


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    meta = hdr.pop("__metadata__", {})
    out = {}
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).astype(np.float32).reshape(v["shape"]).copy())
    return out, json.loads(meta["pixdiff.config"])


class Net:
    """D(x; sigma, labels) of a SongUNet or DhariwalUNet under EDM preconditioning."""

    def __init__(self, sd, cfg):
        self.p, self.c = sd, cfg
        self.adm = cfg["arch"] == "adm"
        f = torch.tensor(cfg.get("resample_filter", [1, 1]), dtype=torch.float32)
        self.filt = (f[:, None] * f[None, :] / f.sum() ** 2)[None, None]

    def w(self, name):
        return self.p["model." + name]

    def conv(self, x, name, pad=None):
        wt = self.w(name + ".weight")
        return F.conv2d(x, wt, self.w(name + ".bias"), padding=wt.shape[-1] // 2 if pad is None else pad)

    def norm(self, x, name, eps):
        c = x.shape[1]
        return F.group_norm(x, min(32, c // 4), self.w(name + ".weight"), self.w(name + ".bias"), eps)

    def resample(self, x, up, pad=None):
        c, k = x.shape[1], self.filt.shape[-1]
        pad = (k - 1) // 2 if pad is None else pad
        f = self.filt.tile([c, 1, 1, 1])
        if up:
            return F.conv_transpose2d(x, f * 4, groups=c, stride=2, padding=pad)
        return F.conv2d(x, f, groups=c, stride=2, padding=pad)

    def block(self, x, emb, name, up=False, down=False, attn=False):
        eps, s = (1e-5, 1.0) if self.adm else (1e-6, math.sqrt(0.5))
        h = F.silu(self.norm(x, name + ".norm0", eps))
        if up or down:
            h = self.resample(h, up)
        h = self.conv(h, name + ".conv0")
        p = F.linear(emb, self.w(name + ".affine.weight"), self.w(name + ".affine.bias"))[:, :, None, None]
        if self.adm:
            scale, shift = p.chunk(2, dim=1)
            h = F.silu(torch.addcmul(shift, self.norm(h, name + ".norm1", eps), scale + 1))
        else:
            h = F.silu(self.norm(h + p, name + ".norm1", eps))
        h = self.conv(h, name + ".conv1")
        sk = x
        if up or down:
            sk = self.resample(sk, up)
        if "model." + name + ".skip.weight" in self.p:
            sk = self.conv(sk, name + ".skip")
        h = (h + sk) * s
        cout = h.shape[1]
        heads = cout // 64 if self.adm else 1
        if attn and heads:
            n, c, hh, ww = h.shape
            q, k, v = self.conv(self.norm(h, name + ".norm2", eps), name + ".qkv").reshape(n * heads, c // heads, 3, hh * ww).unbind(2)
            a = torch.einsum("ncq,nck->nqk", q, k / math.sqrt(c // heads)).softmax(dim=2)
            a = torch.einsum("nqk,nck->ncq", a, v).reshape(n, c, hh, ww)
            h = (self.conv(a, name + ".proj") + h) * s
        return h

    def __call__(self, x, sigma, labels=None):
        c = self.c
        sdata = c.get("sigma_data", 0.5)
        sg = sigma.reshape(-1, 1, 1, 1)
        c_skip = sdata ** 2 / (sg ** 2 + sdata ** 2)
        c_out = sg * sdata / (sg ** 2 + sdata ** 2).sqrt()
        c_in = 1 / (sdata ** 2 + sg ** 2).sqrt()
        cn = (sigma.log() / 4)
        mc, L, nb = c["model_channels"], len(c["channel_mult"]), c["num_blocks"]
        R = c["img_resolution"]
        attn_res = c["attn_resolutions"]
        # mapping
        if self.adm:
            half = mc // 2
            fr = (1 / 10000) ** (torch.arange(half, dtype=torch.float32) / half)
            a = cn[:, None] * fr[None]
            e = torch.cat([a.cos(), a.sin()], 1)
            e = F.silu(F.linear(e, self.w("map_layer0.weight"), self.w("map_layer0.bias")))
            e = F.linear(e, self.w("map_layer1.weight"), self.w("map_layer1.bias"))
            if c["label_dim"]:
                e = e + F.linear(labels, self.w("map_label.weight"))
            emb = F.silu(e)
        else:
            if c.get("embedding_type") == "fourier":
                a = cn[:, None] * (2 * np.pi * self.w("map_noise.freqs"))[None]
            else:
                half = mc * c.get("channel_mult_noise", 1) // 2
                fr = (1 / 10000) ** (torch.arange(half, dtype=torch.float32) / (half - 1))
                a = cn[:, None] * fr[None]
            e = torch.cat([a.sin(), a.cos()], 1)
            if c["label_dim"]:
                e = e + F.linear(labels * math.sqrt(c["label_dim"]), self.w("map_label.weight"), self.w("map_label.bias"))
            e = F.silu(F.linear(e, self.w("map_layer0.weight"), self.w("map_layer0.bias")))
            emb = F.silu(F.linear(e, self.w("map_layer1.weight"), self.w("map_layer1.bias")))
        residual = c.get("encoder_type") == "residual"
        h = x * c_in
        aux, skips = h, []
        for l in range(L):
            r = R >> l
            if l == 0:
                h = self.conv(h, f"enc.{r}x{r}_conv")
            else:
                h = self.block(h, emb, f"enc.{r}x{r}_down", down=True)
                if residual:
                    t = self.conv(aux, f"enc.{r}x{r}_aux_residual", pad=2)
                    h = aux = (h + self.resample(t, False, pad=0)) / np.sqrt(2)
            skips.append(h)
            for i in range(nb):
                h = self.block(h, emb, f"enc.{r}x{r}_block{i}", attn=r in attn_res)
                skips.append(h)
        for l in reversed(range(L)):
            r = R >> l
            if l == L - 1:
                h = self.block(h, emb, f"dec.{r}x{r}_in0", attn=True)
                h = self.block(h, emb, f"dec.{r}x{r}_in1")
            else:
                h = self.block(h, emb, f"dec.{r}x{r}_up", up=True)
            for i in range(nb + 1):
                h = torch.cat([h, skips.pop()], 1)
                h = self.block(h, emb, f"dec.{r}x{r}_block{i}", attn=r in attn_res and (self.adm or i == nb))
        head = ("out_norm", "out_conv") if self.adm else (f"dec.{R}x{R}_aux_norm", f"dec.{R}x{R}_aux_conv")
        f = self.conv(F.silu(self.norm(h, head[0], 1e-5 if self.adm else 1e-6)), head[1])
        return c_skip * x + c_out * f[:, : x.shape[1]]


def train_step_edm(a, sd, kw, cfg):
    """EDM's own training step (training/training_loop.py's loop body, one round, no augmentation):
    EDMLoss (log-normal sigma, weighted L2), backward, the nan_to_num guard, Adam, the EMA lerp,
    on EDMPrecond in train mode (dropout and label dropout on), the same weights as pixdiff's.
    `pixdiff train` does the same work per step (docs/algorithms.md §M1), plus its data loading."""
    import copy
    from training import networks, loss as edm_loss
    torch.set_grad_enabled(True)
    net = networks.EDMPrecond(**kw, label_dropout=a.label_dropout).train()
    net.load_state_dict(sd, strict=False)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = edm_loss.EDMLoss()
    b, C, R, ld = a.train_batch, cfg["in_channels"], cfg["img_resolution"], cfg["label_dim"]
    images = torch.rand(b, C, R, R) * 2 - 1
    labels = F.one_hot(torch.randint(0, ld, (b,)), ld).float() if ld else None

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net=net, images=images, labels=labels)
        loss.sum().mul(1 / b).backward()
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        with torch.no_grad():
            for p_ema, p_net in zip(ema.parameters(), net.parameters()):
                p_ema.copy_(p_net.detach().lerp(p_ema, 0.999))

    ms, cpu = median_ms(step, a.repeat)
    print(f"EDM training step batch {b}: wall {ms / b:.2f} ms/image ({1e3 * b / ms:.1f} img/s), "
          f"CPU {cpu / b:.2f} ms/image")
    torch.set_grad_enabled(False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pixdiff", default=os.path.join(os.path.dirname(__file__), "..", "build", "pixdiff"))
    ap.add_argument("--edm", help="NVlabs/edm checkout: also time EDM's own networks.py")
    ap.add_argument("--bf16", action="store_true",
                    help="with --edm, also time EDM's networks.py under torch.autocast(cpu, "
                         "bfloat16) (oneDNN's bf16 convolutions): what bf16 buys PyTorch here")
    ap.add_argument("--train-batch", type=int, default=0,
                    help="with --edm: also time EDM's own training step at this batch (0: none)")
    ap.add_argument("--label-dropout", type=float, default=0.1,
                    help="the training step's label dropout (configs/train/fashion32.yaml's 0.1)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    sd, cfg = read_safetensors(a.model)
    net = Net(sd, cfg)
    C, R, ld = cfg["in_channels"], cfg["img_resolution"], cfg["label_dim"]
    print(f"torch {torch.__version__}, threads {a.threads}, {cfg['arch']} {R}x{R}, "
          f"{sum(v.numel() for k, v in sd.items() if not k.endswith(('resample_filter', 'freqs')))} params")
    # Check against pixdiff denoise (sigma 2.5, class 3 for a conditional net).
    x = torch.randn(2, C, R, R, generator=torch.Generator().manual_seed(0)) * 2.5
    lab = torch.zeros(2, ld)
    if ld:
        lab[:, 3] = 1
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x.numpy())
        cmd = [a.pixdiff, "denoise", "--model", a.model, "--input", os.path.join(d, "x.npy"),
               "--sigma", "2.5", "--output", os.path.join(d, "d.npy")] + (["--class", "3"] if ld else [])
        if subprocess.run(cmd).returncode == 0:
            dp = np.load(os.path.join(d, "d.npy"))
            dt = net(x, torch.full((2,), 2.5), lab if ld else None).numpy()
            print(f"check: max|D_torch - D_pixdiff| / max|D| = {np.abs(dt - dp).max() / np.abs(dt).max():.2e}")
    nets = [("ours", net)]
    if a.edm:
        sys.path.insert(0, a.edm)
        from training import networks
        kw = dict(img_resolution=R, img_channels=C, label_dim=ld, model_channels=cfg["model_channels"],
                  channel_mult=cfg["channel_mult"], num_blocks=cfg["num_blocks"],
                  attn_resolutions=cfg["attn_resolutions"], dropout=cfg["dropout"],
                  augment_dim=cfg.get("augment_dim", 0))
        if cfg["arch"] == "adm":
            kw["model_type"] = "DhariwalUNet"
        else:
            kw.update(model_type="SongUNet", embedding_type=cfg["embedding_type"],
                      encoder_type=cfg["encoder_type"], decoder_type=cfg["decoder_type"],
                      channel_mult_noise=cfg["channel_mult_noise"], resample_filter=cfg["resample_filter"])
        edm = networks.EDMPrecond(**kw).eval()
        edm.load_state_dict(sd, strict=False)
        nets.append(("EDM networks.py", lambda x, s, l: edm(x, s, l)))
        if a.bf16:
            def edm_bf16(x, s, l):
                # EDMPrecond's own forward asserts a float32 network output, so its
                # preconditioning (EDM Table 1) runs here in float around the bf16 network.
                sd2, sig = edm.sigma_data ** 2, s.reshape(-1, 1, 1, 1)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    F_x = edm.model(x / (sd2 + sig ** 2).sqrt(), sig.log().flatten() / 4,
                                    class_labels=l)
                return sd2 / (sig ** 2 + sd2) * x + sig * edm.sigma_data / (sig ** 2 + sd2).sqrt() * F_x.float()
            nets.append(("EDM networks.py, bf16 autocast", edm_bf16))
    for name, fn in nets:
        for b in map(int, a.batches.split(",")):
            xb, sb = torch.randn(b, C, R, R), torch.full((b,), 2.0)
            lb = torch.zeros(b, ld) if ld else None
            if ld:
                lb[:, 0] = 1
            ms, cpu = median_ms(lambda: fn(xb, sb, lb), a.repeat)
            print(f"{name}: forward batch {b:3d}: wall {ms / b:9.1f} ms/image, CPU {cpu / b:9.1f} ms/image")
    if a.edm and a.train_batch > 0:
        train_step_edm(a, sd, kw, cfg)
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
