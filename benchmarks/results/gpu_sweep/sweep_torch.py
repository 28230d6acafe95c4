"""Scratch hyper-parameter sweep on the lent GPU (PyTorch mirror of train/model.build_unet).
Not part of the kit: only to rank candidate architectures quickly; the shipped model is trained
with edge-train (tf_keras) on CPU."""
import json, sys, time, os, math
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True

def cbr(cin, cout, stride=1, sep=False):
    if sep:
        return nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
                             nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

class UNet(nn.Module):
    def __init__(self, base_filters=16, depth=3, stem_stride=2, separable=False, upsample="bilinear", max_filters=256, dropout=0.0, **_):
        super().__init__()
        w = lambda l: min(base_filters * 2 ** l, max_filters)
        self.stem = cbr(1, base_filters, 2) if stem_stride == 2 else None
        self.stem_stride = stem_stride; self.upsample = upsample
        cin = base_filters if stem_stride == 2 else 1
        self.enc = nn.ModuleList()
        for l in range(depth):
            convs = 1 if (l == 0 and stem_stride == 2) else 2
            layers = []
            for i in range(convs):
                layers.append(cbr(cin, w(l), sep=separable and i > 0)); cin = w(l)
            self.enc.append(nn.Sequential(*layers))
        self.bott = nn.Sequential(cbr(cin, w(depth)), cbr(w(depth), w(depth), sep=separable))
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        cin = w(depth)
        self.ups = nn.ModuleList(); self.dec = nn.ModuleList()
        for l in reversed(range(depth)):
            if upsample == "transpose":
                self.ups.append(nn.Sequential(nn.ConvTranspose2d(cin, w(l), 2, 2, bias=False), nn.BatchNorm2d(w(l)), nn.ReLU())); up_c = w(l)
            else:
                self.ups.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)); up_c = cin
            self.dec.append(nn.Sequential(cbr(up_c + w(l), w(l)), cbr(w(l), w(l), sep=separable))); cin = w(l)
        self.head = nn.Conv2d(cin, 1, 1)
    def forward(self, x):
        if self.stem is not None: x = self.stem(x)
        skips = []
        for e in self.enc:
            x = e(x); skips.append(x); x = F.max_pool2d(x, 2)
        x = self.drop(self.bott(x))
        for up, dec, s in zip(self.ups, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), s], 1))
        x = self.head(x)
        if self.stem_stride == 2: x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return x

def macs(model, hw):
    tot = 0
    def hook(m, i, o):
        nonlocal tot
        if isinstance(m, nn.ConvTranspose2d):
            tot += i[0].shape[2] * i[0].shape[3] * m.weight.numel()
        elif isinstance(m, nn.Conv2d):
            tot += o.shape[2] * o.shape[3] * m.weight.numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d) or isinstance(m, nn.ConvTranspose2d)]
    model.eval(); model(torch.zeros(1, 1, *hw, device="cuda")); [h.remove() for h in hs]; return tot

def augment(x, y, strength):
    # x,y: (B,1,H,W) float on GPU. flips + affine (rot, scale, shift) + gamma/contrast/brightness + noise
    B = x.shape[0]; dev = x.device
    flip = torch.rand(B, device=dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x); y = torch.where(flip[:, None, None, None], y.flip(3), y)
    if strength > 0:
        ang = (torch.rand(B, device=dev) * 2 - 1) * math.radians(10 * strength)
        sc = 1 + (torch.rand(B, device=dev) * 2 - 1) * 0.1 * strength
        tx = (torch.rand(B, device=dev) * 2 - 1) * 0.16 * strength; ty = (torch.rand(B, device=dev) * 2 - 1) * 0.16 * strength
        cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, x.shape, align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        y = (F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.5).float()
        g = torch.exp((torch.rand(B, 1, 1, 1, device=dev) * 2 - 1) * 0.3)
        x = x.clamp(0, 1) ** g
        x = x * (1 + (torch.rand(B, 1, 1, 1, device=dev) * 2 - 1) * 0.15) + (torch.rand(B, 1, 1, 1, device=dev) * 2 - 1) * 0.08
        x = x + torch.randn_like(x) * 0.02
        x = x.clamp(0, 1)
    return x, y

def run(cfg, X, Y, S, fold):
    torch.manual_seed(cfg.get("seed", 0))
    hw = tuple(cfg.get("hw", (128, 176)))
    subs = np.unique(S); perm = np.random.RandomState(123).permutation(subs); nval = len(subs) // 5
    val_s = perm[fold * nval:(fold + 1) * nval]; vm = np.isin(S, val_s)
    Xt = torch.tensor(X[~vm], device="cuda").float()[:, None] / 255; Yt = torch.tensor(Y[~vm], device="cuda").float()[:, None]
    Xv = torch.tensor(X[vm], device="cuda").float()[:, None] / 255; Yv = torch.tensor(Y[vm], device="cuda").float()[:, None]
    if hw != tuple(X.shape[1:]):
        Xt = F.interpolate(Xt, size=hw, mode="area"); Xv = F.interpolate(Xv, size=hw, mode="area")
        Yt = (F.interpolate(Yt, size=hw, mode="area") >= 0.5).float(); Yv_eval = Yv
    model = UNet(**cfg["model"]).cuda().to(memory_format=torch.channels_last)
    nmac = macs(model, hw)
    epochs, bs = cfg.get("epochs", 40), cfg.get("batch", 16)
    steps = epochs * math.ceil(len(Xt) / bs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.get("lr", 2e-3), weight_decay=cfg.get("wd", 0))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.get("lr", 2e-3), total_steps=steps, pct_start=0.05)
    dw, bw = cfg.get("dice_w", 1.0), cfg.get("bce_w", 1.0)
    best, curve = 0, []
    for ep in range(epochs):
        model.train(); perm_i = torch.randperm(len(Xt), device="cuda")
        for i in range(0, len(Xt) - bs + 1, bs):
            idx = perm_i[i:i + bs]; x, y = augment(Xt[idx], Yt[idx], cfg.get("aug", 1.0))
            logit = model(x.contiguous(memory_format=torch.channels_last))
            p = torch.sigmoid(logit)
            bce = F.binary_cross_entropy_with_logits(logit, y)
            inter = (p * y).sum((1, 2, 3)); den = (p + y).sum((1, 2, 3))
            loss = bw * bce + dw * (1 - ((2 * inter + 1) / (den + 1)).mean())
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        model.eval()
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(model(Xv[i:i + 256])) for i in range(0, len(Xv), 256)])
            if p.shape[2:] != Yv.shape[2:]: p = F.interpolate(p, size=Yv.shape[2:], mode="bilinear", align_corners=False)
            for thr in [0.5]:
                pb = p > thr; yb = Yv > 0.5
                inter = (pb & yb).sum((1, 2, 3)).float(); s = pb.sum((1, 2, 3)).float() + yb.sum((1, 2, 3)).float()
                d = torch.where(s == 0, torch.ones_like(s), 2 * inter / s.clamp(min=1)).mean().item()
        curve.append(round(d, 4)); best = max(best, d)
    post = post_eval(p[:, 0].cpu().numpy(), (Yv[:, 0] > 0.5).cpu().numpy())
    return {"post": post, "name": cfg["name"], "fold": fold, "gmac": nmac / 1e9, "best": best, "last": curve[-1], "last5": float(np.mean(curve[-5:])), "curve": curve[::5]}

def post_eval(prob, yb):
    import cv2
    out = {}
    for thr in (0.4, 0.5, 0.6):
        for mode in ("raw", "largest", "minarea50"):
            ds = []
            for p, y in zip(prob, yb):
                m = (p > thr).astype(np.uint8)
                if mode != "raw":
                    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
                    if n > 1:
                        areas = st[1:, cv2.CC_STAT_AREA]
                        if mode == "largest":
                            m = (lab == 1 + int(np.argmax(areas))).astype(np.uint8)
                        else:
                            keep = 1 + np.flatnonzero(areas >= 50)
                            m = np.isin(lab, keep).astype(np.uint8)
                inter = (m & y).sum(); s = m.sum() + y.sum()
                ds.append(1.0 if s == 0 else 2 * inter / s)
            out[f"{mode}@{thr}"] = round(float(np.mean(ds)), 4)
    return out

if __name__ == "__main__":
    z = np.load(sys.argv[1]); X, Y, S = z["X"], z["Y"], z["S"]
    cfgs = json.load(open(sys.argv[2])); worker, nworkers = int(sys.argv[3]), int(sys.argv[4])
    out = sys.argv[5]
    jobs = [(c, f) for c in cfgs for f in c.get("folds", [0, 1])]
    for k, (c, f) in enumerate(jobs):
        if k % nworkers != worker: continue
        t = time.time(); r = run(c, X, Y, S, f); r["sec"] = round(time.time() - t)
        print(json.dumps(r), flush=True)
        with open(out, "a") as fh: fh.write(json.dumps(r) + "\n")
