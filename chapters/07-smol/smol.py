# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SMOL: learning each weight's precision from the noise it tolerates
#
# Most quantization methods are told the bit width in advance (say, 2 bits for every weight) and then work out
# how to train under that constraint. Chapter 5 of {cite}`savarese2025thesis` (the paper is
# {cite}`savarese2022smol`) asks the harder question: how many bits does *each* weight need? The number of bits
# becomes a variable, one per weight, optimized together with the weights. The result, **SMOL** ("Searching for
# Mixed-precisions by Optimizing Limits for perturbations"), rests on a simple observation: a weight that can be
# moved by $\pm\delta$ without hurting the loss can be stored with any number of bits whose rounding error is
# below $\delta$. So instead of searching over bits, SMOL *learns how much noise each weight tolerates*.
#
# This chapter rebuilds the method and checks it:
#
# 1. The discrete problem, the monotonicity assumption that re-frames it, and the chain of approximations that
#    ends in a differentiable objective (Definitions 5.1-5.5).
# 2. The fixed-point quantizer and zero-precision allocation (ZPA), checked exactly.
# 3. Perturbation limits in one and two dimensions, where SMOL's answer has a closed form.
# 4. SMOL on the digits MLP against uniform quantization, over several $\lambda$ and seeds, with ZPA and with the
#    learned precisions shuffled.
# 5. Where the bits go (layer patterns, per-layer SMOL-L and a sensitivity baseline), a small CNN, how to split
#    the budget between precision training and fine-tuning, activations, and what it all costs.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("EFFCOURSE_SCALE", "book")  # "smoke" | "book" | "full"
SEED = 0
DEVICE = "auto"

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from torch import nn

from effcourse import Run
from effcourse.core.data import cifar10, digits, random_crop_flip
from effcourse.core.models import MLP, ResNet20, SmallCNN
from effcourse.core.train import evaluate, fit
from effcourse.smol import fixed_point as qz
from effcourse.smol import smol as sm

run = Run("07-smol", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
run

# %% [markdown]
# ## 1. From a discrete search to a differentiable objective
#
# **The problem.** Write each parameter $\theta_i$ with $p_i$ signed bits $b_{i,j} \in \{\pm 1\}$ and a
# bit-value map $(v_j)$: $\theta_i = \sum_{j=1}^{p_i} b_{i,j} v_j$. The *mixed precision problem* (Def. 5.1) asks
# for the fewest total bits that keep the loss within $\delta$ of the best achievable $\mathcal{L}^*$:
#
# $$\min_{p \in \mathbb{N}^d,\ b} \ \sum_{i=1}^d p_i \quad \text{s.t.} \quad \mathcal{L}(f(V(b, p))) \le \mathcal{L}^* + \delta .$$
#
# Two things make it hard: a search over bit strings, and no derivative with respect to an integer $p_i$.
# Optimizing the values instead of the bits (Def. 5.2, with $Q(\theta, p)$ the shortest bit string of $\theta$
# truncated to $p$ bits) removes the first obstacle and is equivalent (Corollary 5.1), but $Q$ is piecewise
# constant and $p$ is still an integer.
#
# **Re-framing.** Write the rounding as a perturbation, $Q(\theta, p) = \theta + R(\theta, p)$ (eq. 5.10), and
# assume that *more bits never hurt*: if $(\theta, p)$ meets the loss constraint, so does every $p' \ge p$
# (eq. 5.11). Then, for $w = Q(\theta, p)$, meeting the constraint at precision $p$ is the same as meeting it for
# **every** continuation of $w$'s bit string beyond position $p$, i.e. for every residual $R(w, p')$ with
# $p' \ge p$ (Def. 5.3, eq. 5.13): a problem with infinitely many constraints, one per continuation.
#
# **Approximating.** With fixed-point bits $v_j = 2^{1-j}$ and the bits after position $p$ drawn at random, the
# residual $\sum_{j > p} b_j 2^{1-j}$ fills the interval $[-2^{1-p}, 2^{1-p}]$. Replace the infinitely many
# constraints by one on the expected loss under $\epsilon_i \sim \mathcal{U}(\pm 2^{1-p_i})$ (eq. 5.15), estimate it
# with $K$ samples (5.16), relax $p$ to real values and move the constraint into a Lagrangian (5.17). Finally write
# the half-width $2^{1-p} \in (0, 1]$ as a sigmoid, $2^{1-p} = \sigma(s)$, so that $s \in \mathbb{R}$ needs no
# projection. Since every fixed-point value lies in $[\pm 2]$ (5.18), the trained objective is (Def. 5.5)
#
# $$\min_{s \in \mathbb{R}^d,\ w \in [\pm 2]^d} \ \frac{1}{K} \sum_{k=1}^K \mathcal{L}\big(f(w + \sigma(s) \odot \epsilon^{(k)})\big)
#   + \lambda \sum_i \log_2\!\big(1 + e^{-s_i}\big), \qquad \epsilon^{(k)} \sim \mathcal{U}^d(\pm 1).$$
#
# The penalty is $\lambda \sum_i (p_i - 1)$ in disguise: from $\sigma(s) = 2^{1-p}$ we get
# $p = 1 - \log_2 \sigma(s) = 1 + \log_2(1 + e^{-s})$, and inverting, $s = -\ln(2^{p-1} - 1)$, which is how $s$ is
# initialized from $p_\text{init}$. Its gradient $-\sigma(-s)/\ln 2$ always pushes $s$ up (wider noise, fewer
# bits); the task loss pushes back wherever the noise hurts. After training, $p = 1 + \lfloor \log_2(1 + e^{-s})
# \rfloor$ (eq. 5.20 with the floor the thesis's experiments use; Algorithm 5 prints "round"), the noise is
# dropped, and the weights are fine-tuned at those precisions with straight-through gradients (Algorithm 5).
#
# The maps, checked:

# %%
# NBVAL_CHECK_OUTPUT
s_init = sm.precision_to_s(8.0)
p_grid = torch.tensor([1.5, 2.0, 3.0, 8.0, 12.0], dtype=torch.float64)
s_grid = sm.precision_to_s(p_grid)
s_rand = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4
print("s_init(p_init = 8) =", round(float(s_init), 4), " = -ln 127:", math.isclose(float(s_init), -math.log(127), rel_tol=1e-6))
print("sigmoid(s_init) = 2^-7:", math.isclose(float(torch.sigmoid(s_init)), 2 ** -7, rel_tol=1e-6))
print("p(s(p)) = p:", bool(torch.allclose(sm.s_to_precision(s_grid), p_grid)))
print("penalty = sum (p - 1):", bool(torch.isclose(sm.precision_penalty(s_rand), (sm.s_to_precision(s_rand) - 1).sum())))
print("floor / round of p at s = 0 (p = 2 exactly):", sm.integer_precision(torch.zeros(1)).item(),
      sm.integer_precision(torch.zeros(1), "round").item())

# %% [markdown]
# ## 2. The fixed-point quantizer and zero-precision allocation
#
# With $v_j = 2^{1-j}$, one bit gives $\{-1, +1\}$, two bits $\{\pm 0.5, \pm 1.5\}$, three bits
# $\{\pm 0.25, \pm 0.75, \pm 1.25, \pm 1.75\}$: the $p$-bit grid is the $2^p$ odd multiples of $2^{1-p}$. Its cells
# have width $\Delta = 2^{2-p}$, so the nearest grid point is $q(w, p) = (\lfloor w / \Delta \rfloor + \tfrac12)
# \Delta$, clipped to $\pm(2 - 2^{1-p})$, and the rounding error is at most $2^{1-p} = \sigma(s)$: exactly the
# half-width of the training noise. `effcourse.smol.fixed_point.quantize` implements this closed form, vectorized
# over one precision per weight; below it is compared with the grid built by enumerating every bit string.
#
# The grid has no zero. **Zero-precision allocation** (5.2.4) adds one: define $q(w, 0) = 0$ and give a weight
# precision 0 whenever $|w| \le |w - q(w, p)|$. The new error is $|w|$, which is at most the old one exactly when
# the rule fires, so ZPA can never increase a weight's error; it fires when $|w| \le 2^{-p}$, half the smallest
# grid magnitude. The thesis's example: $q(0.2, 2) = 0.5$ (error 0.3), $q(0.2, 0) = 0$ (error 0.2), two bits saved.

# %%
# NBVAL_CHECK_OUTPUT
for p in (1, 2, 3):
    print(f"{p}-bit grid:", qz.fixed_point_grid(p).tolist())
q_02_2 = float(qz.quantize(torch.tensor(0.2), 2))
q_02_0 = float(qz.quantize(torch.tensor(0.2), 0))
print("q(0.2, 2) =", q_02_2, "  q(0.2, 0) =", q_02_0)

gen = torch.Generator().manual_seed(0)
w_test = (torch.rand(20000, generator=gen, dtype=torch.float64) * 4 - 2)
closed_form_ok = True
for p in range(1, 9):
    grid = qz.fixed_point_grid(p)
    nearest = grid[(w_test[:, None] - grid[None, :]).abs().argmin(1)]
    err_closed, err_enum = (w_test - qz.quantize(w_test, p)).abs(), (w_test - nearest).abs()
    closed_form_ok &= bool(torch.allclose(err_closed, err_enum)) and bool((err_closed <= 2.0 ** (1 - p) + 1e-12).all())
print("closed form = nearest enumerated grid point, error <= 2^(1-p), p = 1..8:", closed_form_ok)

p_rand = torch.randint(1, 9, w_test.shape, generator=gen)
p_zpa = qz.zero_precision_allocation(w_test, p_rand)
zpa_never_up = bool((qz.quantization_error(w_test, p_zpa) <= qz.quantization_error(w_test, p_rand)).all())
zpa_rule = bool(((p_zpa == 0) == (w_test.abs() <= 2.0 ** (-p_rand.double()))).all())
print("ZPA never raises the error (20,000 random weights):", zpa_never_up, "| fires iff |w| <= 2^-p:", zpa_rule)

# %%
run.claim("q(0.2, 2) = 0.5 and q(0.2, 0) = 0", q_02_2 == 0.5 and q_02_0 == 0.0,
          thesis="q(0.2, 2) = 0.5, q(0.2, 0) = 0 (5.2.4)", ours=f"q(0.2, 2) = {q_02_2}, q(0.2, 0) = {q_02_0}")
run.claim("closed-form quantizer = nearest point of the enumerated grid", closed_form_ok,
          thesis="q maps w to the closest value representable with p bits", ours="equal on 20,000 weights, p = 1..8")

# %% [markdown]
# Zero-precision allocation is where SMOL meets pruning.
# {doc}`../06-continuous-sparsification/continuous-sparsification` relaxes the keep-or-remove choice of each weight
# much as SMOL relaxes its bit width: a real $s$ per weight through a sigmoid (a gate $\sigma(\beta s)$ there, the
# noise half-width $\sigma(s) = 2^{1-p}$ here) and a $\lambda$-weighted penalty. But CS raises the temperature
# $\beta$ during training until the gate is a step, so that rounding it at the end changes little. SMOL has no such
# continuation: its precisions stay real-valued until the floor of section 1, the rounding gap is left to
# fine-tuning, and its zeros come from a fixed rule applied after training, not from a learned gate.
#
# ## 3. Perturbation limits, in one and two dimensions
#
# Figure 5.1 of the thesis in one picture: a weight sits in a basin of the loss; noise of half-width $\delta$
# around it costs nothing while the basin is wider than $\delta$ and starts to cost loss once it is not. The
# penalty keeps widening $\delta$, the loss keeps it inside the basin, and the precision follows from where they
# balance.

# %% mystnb={"image": {"alt": "Left: a flat-bottomed loss of one weight, flat between -0.3 and 0.3, with shaded noise intervals of half-width 0.15, 0.3 and 0.7 around w = 0; right: the expected loss under noise of half-width delta plus the bit penalty for lambda = 0.01 and 0.05, each minimized (dotted vertical lines) near delta = 0.35 to 0.4, where the noise starts to leave the flat bottom."}}
def basin(w):  # a flat-bottomed 1-D loss: flat on [-0.3, 0.3], then rising
    return torch.relu(w.abs() - 0.3) ** 2 * 8

ws = torch.linspace(-1.2, 1.2, 400)
eps = torch.rand(4000, generator=torch.Generator().manual_seed(1)) * 2 - 1
deltas = torch.linspace(0.01, 1.0, 200)
noisy = torch.stack([basin(0.0 + d * eps).mean() for d in deltas])
bits = 1 - torch.log2(deltas)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
ax[0].plot(ws, basin(ws), color="k")
for d, c in [(0.15, "tab:green"), (0.3, "tab:orange"), (0.7, "tab:red")]:
    ax[0].axvspan(-d, d, alpha=0.15, color=c, label=f"noise $\\pm${d}")
ax[0].set(xlabel="w", ylabel="loss", title="noise around w = 0")
ax[0].legend(fontsize=8)
for lam, c in [(0.01, "tab:blue"), (0.05, "tab:purple")]:
    obj = noisy + lam * (bits - 1)
    ax[1].plot(deltas, obj, color=c, label=f"E[loss] + {lam} (p - 1)")
    ax[1].axvline(float(deltas[obj.argmin()]), color=c, ls=":")
ax[1].plot(deltas, noisy, color="k", lw=1, label="E[loss] only")
ax[1].set(xlabel="noise half-width $\\delta = \\sigma(s)$", ylabel="objective", title="where the penalty and the loss balance")
ax[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# In several dimensions each weight gets its own limit (Figure 5.2). A separable quadratic
# $\mathcal{L}(w) = \sum_i \tfrac{h_i}{2}(w_i - c_i)^2$ makes this exact: since $\mathbb{E}[\epsilon^2] = 1/3$ for
# $\epsilon \sim \mathcal{U}(\pm1)$,
#
# $$\mathbb{E}\,\mathcal{L}(w + \sigma \odot \epsilon) + \lambda \sum_i (p_i - 1) = \mathcal{L}(w) + \sum_i \frac{h_i \sigma_i^2}{6} - \lambda \sum_i \log_2 \sigma_i ,$$
#
# minimized at $w = c$ and $\sigma_i^{*2} = 3\lambda / (h_i \ln 2)$, that is
#
# $$p_i^* = 1 + \tfrac12 \log_2 \frac{h_i \ln 2}{3 \lambda}:$$
#
# ten times the curvature buys $\tfrac12 \log_2 10 \approx 1.66$ more bits. SMOL, run on this loss as an
# `nn.Module` whose weight it wraps, should find these precisions without knowing the formula.

# %%
class SeparableQuadratic(nn.Module):
    """sum_i h_i / 2 (w_i - c_i)^2 as a module with one weight tensor (the input is ignored)."""

    def __init__(self, h, c):
        super().__init__()
        self.register_buffer("h", torch.as_tensor(h, dtype=torch.float32))
        self.register_buffer("c", torch.as_tensor(c, dtype=torch.float32))
        self.weight = nn.Parameter(torch.zeros_like(self.c))

    def forward(self, x=None):
        return 0.5 * (self.h * (self.weight - self.c) ** 2).sum()


h = [1.0, 10.0, 100.0, 1000.0]
c = [0.6, -0.3, 0.45, -0.8]
lam_quad = 1e-3
quad = SeparableQuadratic(h, c).to(dev)
qsmol = sm.SMOL(quad, ["weight"], scale=1.0, p_init=8.0)
w_opt = torch.optim.SGD(qsmol.model_parameters(), lr=1e-3)
s_opt = torch.optim.Adam(qsmol.precision_parameters(), lr=1e-2)
trace = []
for step in range(cfg.quad_steps):
    loss = sum(quad() for _ in range(cfg.quad_samples)) / cfg.quad_samples + lam_quad * qsmol.penalty()
    w_opt.zero_grad()
    s_opt.zero_grad()
    loss.backward()
    w_opt.step()
    s_opt.step()
    qsmol.clip_()
    if step % 50 == 0 or step == cfg.quad_steps - 1:
        trace.append(qsmol.real_precisions()["weight"].cpu().numpy().copy())
p_learned = qsmol.real_precisions()["weight"].cpu().numpy()
p_star = 1 + 0.5 * np.log2(np.array(h) * math.log(2) / (3 * lam_quad))
w_final = qsmol.grid_weight("weight").detach().cpu().numpy()
print("curvature h:     ", h)
print("learned p:       ", np.round(p_learned, 3))
print("closed form p*:  ", np.round(p_star, 3))
print("max |w - c|:     ", float(np.abs(w_final - np.array(c)).max()))
quad_gap = float(np.abs(p_learned - p_star).max())
run.metric("quadratic/max_gap_bits", quad_gap)
run.claim("learned precision = closed-form optimum on a separable quadratic",
          quad_gap < 0.15 and bool(np.all(np.diff(p_learned) > 0)),
          thesis="Fig. 5.2: precision grows with the curvature of each axis (picture only)",
          ours=f"max |p - p*| = {quad_gap:.3f} bits over h = 1..1000", value=quad_gap, min_scale="book")

# %% mystnb={"image": {"alt": "Left: the real-valued precision SMOL learns for each of four weights of a separable quadratic against training steps, each settling on its dotted closed-form optimum, higher for higher curvature h (about 5 bits at h = 1 up to about 10 at h = 1000). Right: loss contours of two of the weights with the learned noise box, wide along the flat axis and narrow along the steep one, and the fixed-point grid those precisions allow."}}
trace = np.array(trace)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
steps = np.linspace(0, cfg.quad_steps, len(trace))
for i, hi in enumerate(h):
    ax[0].plot(steps, trace[:, i], label=f"h = {hi:g}")
    ax[0].axhline(p_star[i], color=ax[0].lines[-1].get_color(), ls=":", lw=1)
ax[0].set(xlabel="step", ylabel="real-valued precision p", title="SMOL on a separable quadratic (dotted: p*)")
ax[0].legend(fontsize=8)
# the 2-D picture (Fig. 5.2): axes 0 (h = 1) and 2 (h = 100)
i, j = 0, 2
half = 0.3
g1, g2 = np.meshgrid(np.linspace(c[i] - half, c[i] + half, 200), np.linspace(c[j] - half, c[j] + half, 200))
zz = 0.5 * h[i] * (g1 - c[i]) ** 2 + 0.5 * h[j] * (g2 - c[j]) ** 2
ax[1].contour(g1, g2, zz, levels=[0.002, 0.01, 0.05, 0.2, 1.0], colors="gray", linewidths=0.8)
sig = 2.0 ** (1 - p_learned)
ax[1].add_patch(plt.Rectangle((w_final[i] - sig[i], w_final[j] - sig[j]), 2 * sig[i], 2 * sig[j], fill=False,
                              color="tab:red", lw=1.5, label="learned noise box"))
pi, pj = int(np.floor(p_learned[i])), int(np.floor(p_learned[j]))
gi, gj = qz.fixed_point_grid(pi).numpy(), qz.fixed_point_grid(pj).numpy()
gx, gy = np.meshgrid(gi, gj)
ax[1].scatter(gx, gy, s=4, color="tab:blue", label=f"grid: {pi} x {pj} bits")
ax[1].set(xlim=(c[i] - half, c[i] + half), ylim=(c[j] - half, c[j] + half), xlabel=f"w{i} (h = {h[i]:g})",
          ylabel=f"w{j} (h = {h[j]:g})", title="flat axis: wide box, few bits")
ax[1].legend(fontsize=8, loc="upper right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. SMOL on digits
#
# The setting: the 8x8 digits (1,257 training and 540 test images), an MLP 60-64-64-10 whose three weight matrices
# (8,576 weights) are quantized per weight; biases stay in full precision. The thesis's grid has no scale, which
# is harmless for a convolution followed by BatchNorm but not for a layer whose output is used as is: Kaiming
# initialization puts these weights near $\pm 0.1$, far from every grid point. Each layer therefore measures its
# weights in units of a power of two, $c_l = 2^{\lceil \log_2 \max|W_l| \rceil}$, fixed at initialization (a shift,
# which costs no bits in fixed point). Because the weights are stored in those units, the weight learning rate is
# larger than usual (`lr_w` below).
#
# The protocol follows Algorithm 5 at a CPU budget. Precision training: SGD (momentum 0.9) on $w$, Adam on $s$
# with learning rate $10^{-2}$ (the thesis's $10^{-3}$ moves $s$ at most about $10^{-3}$ per step, far too slow
# for the few thousand steps here), $p_\text{init} = 8$, one noise sample per step, $w$ clipped to
# $\pm(2 - \sigma(s))$. Then floor to integer precisions, optionally ZPA, and straight-through fine-tuning.
# We quote $\lambda d$, $\lambda$ times the number of quantized weights, because the penalty is a sum: the thesis's
# ResNet-20 $\lambda = 10^{-6}$ is $\lambda d \approx 0.27$.
#
# The baselines get the same budget: a full-precision network trained in the same weight domain for the
# precision-training epochs, then either trained on at full precision or quantized *uniformly* to $k$ bits on the
# same grid and fine-tuned with the same straight-through estimator.

# %%
def make_data():
    if cfg.dataset == "cifar10":
        return cifar10(device=dev)
    return digits(device=dev)


def make_model(seed):
    torch.manual_seed(seed)
    if cfg.dataset == "cifar10":
        return ResNet20().to(dev)  # the thesis's CIFAR-10 model
    return MLP([data.num_features, cfg.hidden, cfg.hidden, 10]).to(dev)


def quantized_names(model):
    # The thesis keeps BatchNorm and the 1x1 shortcut convolutions in full precision.
    return [f"{n}.weight" for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d)) and "shortcut" not in n]


data = make_data()
augment = (lambda x: random_crop_flip(x, generator=run.generator)) if cfg.augment else None
n_quant = sum(dict(make_model(0).named_parameters())[n].numel() for n in quantized_names(make_model(0)))
common = dict(precision_epochs=cfg.precision_epochs, finetune_epochs=cfg.finetune_epochs,
              batch_size=cfg.batch_size, lr_w=cfg.lr_w, lr_ft=cfg.lr_ft, momentum=cfg.momentum)
print(data, "| quantized weights d =", n_quant)

# %%
from tqdm.auto import tqdm

results = {ld: [] for ld in cfg.lam_d}
uniform = []
for seed in tqdm(cfg.seeds, desc="seeds"):
    gen = torch.Generator().manual_seed(seed)
    model = make_model(seed)
    u = sm.uniform_pipeline(model, data, cfg.uniform_bits, weights=quantized_names(model),
                            weight_decay=cfg.weight_decay, milestones=cfg.milestones,
                            ft_milestones=cfg.ft_milestones, augment=augment, generator=gen, **common)
    uniform.append(u)
    for ld in cfg.lam_d:
        model = make_model(seed)
        r = sm.smol_pipeline(model, data, ld / n_quant, lr_s=cfg.lr_s, samples=cfg.samples, p_init=cfg.p_init,
                             weights=quantized_names(model), weight_decay=cfg.weight_decay,
                             milestones=cfg.milestones, ft_milestones=cfg.ft_milestones, augment=augment,
                             generator=gen, **common)
        results[ld].append(r)


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


fp_err = mean(uniform, "err_fp")
table = ["| run | bpp | test err before FT % | test err after FT % |", "|---|---|---|---|",
         f"| full precision | 32 | {100 * mean(uniform, 'err_fp_before'):.2f} | {100 * fp_err:.2f} |"]
for k in cfg.uniform_bits:
    table.append(f"| uniform {k}-bit | {k} | {100 * mean(uniform, f'err_u{k}_before'):.2f} "
                 f"| {100 * mean(uniform, f'err_u{k}_after'):.2f} |")
for ld in cfg.lam_d:
    rs = results[ld]
    table.append(f"| SMOL λd = {ld:g} | {mean(rs, 'bpp'):.2f} | {100 * mean(rs, 'err_before'):.2f} "
                 f"| {100 * mean(rs, 'err_after'):.2f} |")
    table.append(f"| SMOL* (ZPA) λd = {ld:g} | {mean(rs, 'bpp_zpa'):.2f} | {100 * mean(rs, 'err_zpa_before'):.2f} "
                 f"| {100 * mean(rs, 'err_zpa_after'):.2f} |")
    table.append(f"| shuffled precisions λd = {ld:g} | {mean(rs, 'bpp'):.2f} "
                 f"| {100 * mean(rs, 'err_shuffled_before'):.2f} | — |")
display(Markdown("\n".join(table) + f"\n\n*Means over seeds {list(cfg.seeds)}; 540 test images (one image = "
                 "0.19 points).*"))

# %% mystnb={"image": {"alt": "Two panels of test error (percent) against average bits per parameter, before and after fine-tuning. Before, SMOL (blue) and SMOL with ZPA (green) lie well below uniform k-bit quantization (grey) and below the same precisions shuffled (red crosses) at low bit widths; after, every curve lies within one to two points of full precision (dotted line)."}, "figure": {"caption": "SMOL on the digits MLP: test error against average bits per parameter for SMOL, SMOL with zero-precision allocation (SMOL*) and uniform k-bit quantization, before (left) and after (right) fine-tuning; small dots are single seeds.", "name": "fig-smol-digits"}}
fig, ax = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for a, when in zip(ax, ["before", "after"]):
    ub = [k for k in cfg.uniform_bits]
    a.plot(ub, [100 * mean(uniform, f"err_u{k}_{when}") for k in ub], "s--", color="gray", label="uniform k-bit")
    for key, bkey, lab, col in [("err", "bpp", "SMOL", "tab:blue"), ("err_zpa", "bpp_zpa", "SMOL* (ZPA)", "tab:green")]:
        xs = [mean(results[ld], bkey) for ld in cfg.lam_d]
        ys = [100 * mean(results[ld], f"{key}_{when}") for ld in cfg.lam_d]
        a.plot(xs, ys, "o-", color=col, label=lab)
        for seed_i in range(len(cfg.seeds)):
            a.scatter([results[ld][seed_i][bkey] for ld in cfg.lam_d],
                      [100 * results[ld][seed_i][f"{key}_{when}"] for ld in cfg.lam_d], s=8, color=col, alpha=0.3)
    if when == "before":
        a.plot([mean(results[ld], "bpp") for ld in cfg.lam_d],
               [100 * mean(results[ld], "err_shuffled_before") for ld in cfg.lam_d], "x:", color="tab:red",
               label="SMOL, precisions shuffled")
    a.axhline(100 * fp_err, color="k", lw=0.8, ls=":", label="full precision")
    a.set(xlabel="average bits per parameter", ylabel="test error %", title=f"{when} fine-tuning")
    a.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading {numref}`Figure %s <fig-smol-digits>`: before fine-tuning, SMOL's precisions are worth much more than
# the same number of bits
# spent uniformly, and much more than the same precisions shuffled among the weights of each layer. Fine-tuning
# closes most gaps on a task this small: every curve ends up within a point or so of full precision. ZPA moves
# the SMOL curve left by about half a bit at no cost in accuracy (it even helps: zeroing the small weights is
# closer to them than $\pm 2^{1-p}$ was).
#
# Now the thesis's claims, at this scale, over the seeds above.

# %%
bpps = [mean(results[ld], "bpp") for ld in cfg.lam_d]
decreasing = all(b1 > b2 for b1, b2 in zip(bpps, bpps[1:]))
per_seed_decreasing = all(all(results[a][i]["bpp"] > results[b][i]["bpp"] for a, b in zip(cfg.lam_d, cfg.lam_d[1:]))
                          for i in range(len(cfg.seeds)))
for ld, b in zip(cfg.lam_d, bpps):
    run.metric(f"smol/bpp_lamd{ld:g}", b)
    run.metric(f"smol/err_before_lamd{ld:g}", mean(results[ld], "err_before"))
    run.metric(f"smol/err_after_lamd{ld:g}", mean(results[ld], "err_after"))
run.metric("uniform/err_fp", fp_err)
run.metric("uniform/err_u2_before", mean(uniform, "err_u2_before"))
run.claim("average bpp decreases strictly as lambda grows", decreasing and per_seed_decreasing,
          thesis="R20: lambda 5e-7 -> 2.8 bpp, 1e-6 -> 2.1 bpp",
          ours="λd " + " / ".join(f"{ld:g}" for ld in cfg.lam_d) + " -> " + " / ".join(f"{b:.2f}" for b in bpps)
          + " bpp (every seed)", min_scale="book")

# the lambda whose mean bpp is closest to 2
ld2 = min(cfg.lam_d, key=lambda ld: abs(mean(results[ld], "bpp") - 2.0))
gap2 = 100 * (mean(results[ld2], "err_after") - fp_err)
run.claim("at about 2 bpp, accuracy after fine-tuning within 3 points of full precision", gap2 <= 3.0,
          thesis="R20: SMOL 92.5 % at 2.1 bpp vs FP 92.1-92.6 %",
          ours=f"{mean(results[ld2], 'bpp'):.2f} bpp: err {100 * mean(results[ld2], 'err_after'):.2f} % vs FP "
               f"{100 * fp_err:.2f} % (gap {gap2:+.2f} points)", value=gap2, min_scale="book")

# %%
zpa_drop = {ld: mean(results[ld], "bpp") - mean(results[ld], "bpp_zpa") for ld in cfg.lam_d}
zpa_move = {ld: 100 * (mean(results[ld], "err_zpa_after") - mean(results[ld], "err_after")) for ld in cfg.lam_d}
zpa_never_up_trained = all(r["zpa_error_never_up"] for rs in results.values() for r in rs)
print("ZPA: bpp saved per λd:", {ld: round(v, 2) for ld, v in zpa_drop.items()})
print("ZPA: change of test error after FT (points; negative = better):", {ld: round(v, 2) for ld, v in zpa_move.items()})
run.claim("ZPA never raises any weight's quantization error", zpa_never_up and zpa_never_up_trained,
          thesis="guaranteed by construction (5.2.4)",
          ours="checked exactly on random weights and on every trained weight, every seed and λ")
run.claim("ZPA lowers bpp by >= 0.3 without moving accuracy by more than 1 point",
          min(zpa_drop.values()) >= 0.3 and abs(zpa_move[ld2]) <= 1.0 and max(zpa_move.values()) <= 1.0,
          thesis="DCGAN: -1 to -2 bpp typical; R20 SMOL* 1.7 bpp at 92.6 %",
          ours=f"bpp -{min(zpa_drop.values()):.2f} to -{max(zpa_drop.values()):.2f}; error change at "
               f"{mean(results[ld2], 'bpp'):.1f} bpp {zpa_move[ld2]:+.2f} points, never worse by > 1 point",
          value=min(zpa_drop.values()), min_scale="book")

# %%
shuffle_gaps = np.array([[100 * (r["err_shuffled_before"] - r["err_before"]) for r in results[ld]] for ld in cfg.lam_d])
shuffle_loss = np.array([[r["train_loss_shuffled_before"] - r["train_loss_before"] for r in results[ld]]
                         for ld in cfg.lam_d])
print("shuffled minus learned, test error before FT (points), rows = λd:\n", np.round(shuffle_gaps, 1))
print("shuffled minus learned, training loss before FT, mean:", round(float(shuffle_loss.mean()), 3))
run.metric("shuffle/mean_gap_points", float(shuffle_gaps.mean()))
run.claim("learned precisions beat the same precisions shuffled (before fine-tuning)", shuffle_gaps.mean() >= 1.5,
          thesis="Table 5.6: re-trained 91.5 % (same) vs 89.3 % (shuffled), after 300 epochs",
          ours=f"mean gap {shuffle_gaps.mean():.2f} points over {shuffle_gaps.size} runs "
               f"(range {shuffle_gaps.min():+.1f} to {shuffle_gaps.max():+.1f})", value=float(shuffle_gaps.mean()),
          min_scale="book")

below2 = [ld for ld in cfg.lam_d if mean(results[ld], "bpp") < 2.0]
ld_b = below2[0] if below2 else cfg.lam_d[-1]
smol_b, u2_b = 100 * mean(results[ld_b], "err_before"), 100 * mean(uniform, "err_u2_before")
run.claim("SMOL beats uniform 2-bit at fewer bits (before fine-tuning)", bool(below2) and smol_b < u2_b,
          thesis="R20: SMOL 92.5 % at 2.1 bpp vs LQ-Nets 2-bit 91.8 %, SLB 2-bit 92.0 % (after training)",
          ours=f"SMOL {mean(results[ld_b], 'bpp'):.2f} bpp: err {smol_b:.2f} % vs uniform 2-bit {u2_b:.2f} %",
          value=u2_b - smol_b, min_scale="book")

# %% [markdown]
# ## 5. Where the bits go
#
# **Per layer.** The histograms below are the precisions SMOL gave each layer (one seed, the $\lambda$ closest to
# 2 bits). They are broad: a real mixture of 1-, 2-, 3- and more-bit weights, not a uniform assignment in
# disguise. The thesis's per-layer picture (Figure 5.6, SMOL-L on ResNet-20) has the first convolution and the
# final linear layer at much higher precision than the rest.

# %% mystnb={"image": {"alt": "One histogram per weight matrix of the digits MLP of the learned bits per weight, with the layer's mean in the title: the two large hidden matrices mostly get 1 to 3 bits, the small classifier matrix is spread over 1 to 5 bits and has the highest mean."}}
prec = results[ld2][0]["precisions"]
names = list(prec)
fig, ax = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.8), sharey=True)
for a, n in zip(np.atleast_1d(ax), names):
    p = prec[n].flatten().numpy()
    a.hist(p, bins=np.arange(-0.5, p.max() + 1.5), rwidth=0.8)
    a.set(title=f"{n}: mean {p.mean():.2f} bits", xlabel="bits", ylabel="weights")
plt.tight_layout()
plt.show()
layer_means = {ld: {n: float(np.mean([r["precisions"][n].float().mean() for r in results[ld]])) for n in names}
               for ld in cfg.lam_d}
display(Markdown("| λd | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n" + "\n".join(
    f"| {ld:g} | " + " | ".join(f"{layer_means[ld][n]:.2f}" for n in names) + " |" for ld in cfg.lam_d)
    + "\n\n*Mean learned precision per layer (bits), averaged over seeds.*"))

# %% [markdown]
# The pattern of Figure 5.6 shows up in miniature: at every $\lambda$ the hidden-to-hidden matrix, the largest and
# most redundant, gets the fewest bits, and the classifier, whose every weight feeds a logit directly, gets the
# most. The thesis's figure is for one precision per layer on ResNet-20; here the precisions are per weight and
# averaged per layer.

# %%
first, middle, last = names[0], names[len(names) // 2], names[-1]
pattern = all(layer_means[ld][first] > layer_means[ld][middle] and layer_means[ld][last] > layer_means[ld][middle]
              for ld in cfg.lam_d)
run.claim("layer pattern: first and last layers get more bits than the middle one", pattern,
          thesis="Fig. 5.6 (SMOL-L, R20): first conv and final FC much higher than the rest",
          ours="mean bits first / middle / last at λd = " + ", ".join(
              f"{ld:g}: {layer_means[ld][first]:.2f} / {layer_means[ld][middle]:.2f} / {layer_means[ld][last]:.2f}"
              for ld in cfg.lam_d[:2]) + ", ...", min_scale="book")

# %% [markdown]
# **One precision per layer (SMOL-L)** and a cheap mixed-precision baseline. SMOL-L shares one $s$ per layer; we
# charge its penalty for every weight the layer stores ($n_l (p_l - 1)$, so $\lambda$ means the same as for
# per-weight SMOL; the thesis does not say which it used). The baseline is a *sensitivity* allocation in the
# spirit of HAWQ {cite}`dong2019hawq`: measure how much the training loss rises when each layer alone is
# quantized to $b$ bits, then start all layers at 8 bits and repeatedly take a bit from the layer whose loss rises
# least per bit saved, until the average matches SMOL-L's. Both start from the same trained networks as above
# (the baseline from the full-precision one) and get the same fine-tuning.

# %%
lay_rows = []
seed0 = cfg.seeds[0]
for ld in cfg.layer_lam_d:
    gen = torch.Generator().manual_seed(seed0)
    model = make_model(seed0)
    r = sm.smol_pipeline(model, data, ld / n_quant, granularity="layer", lr_s=cfg.lr_s, p_init=cfg.p_init,
                         zpa=False, shuffle=False, weights=quantized_names(model), generator=gen, **common)
    per_layer = {n: int(p.flatten()[0]) for n, p in r["precisions"].items()}
    # sensitivity baseline at the same average bits, from the full-precision model of section 4
    gen = torch.Generator().manual_seed(seed0)
    base_model = make_model(seed0)
    ub = sm.uniform_pipeline(base_model, data, [], generator=gen, **common)
    usmol = ub["smol"]
    sens = sm.sensitivity_allocation(usmol, data.x_train[:2048], data.y_train[:2048], budget_bpp=max(r["bpp"], 1.0))
    sens_bpp = usmol.bits_per_parameter()
    sens_before = evaluate(base_model, data.x_test, data.y_test)[1]
    fit(base_model, torch.optim.SGD(usmol.model_parameters(), lr=cfg.lr_ft, momentum=cfg.momentum), data,
        cfg.finetune_epochs, cfg.batch_size, generator=gen, eval_every=cfg.finetune_epochs)
    sens_after = evaluate(base_model, data.x_test, data.y_test)[1]
    lay_rows.append((ld, r["bpp"], per_layer, r["err_before"], r["err_after"], sens, sens_bpp, sens_before, sens_after))
display(Markdown("| λd | SMOL-L bits per layer | bpp | err before / after % | sensitivity bits per layer | bpp "
                 "| err before / after % |\n|---|---|---|---|---|---|---|\n" + "\n".join(
    f"| {ld:g} | {list(pl.values())} | {b:.2f} | {100 * e0:.1f} / {100 * e1:.1f} | {list(sv.values())} | {sb:.2f} "
    f"| {100 * s0:.1f} / {100 * s1:.1f} |" for ld, b, pl, e0, e1, sv, sb, s0, s1 in lay_rows)
    + f"\n\n*Seed {seed0}. Layers in order: {names}.*"))

# %% [markdown]
# ### A small CNN
#
# The same procedure on a two-layer CNN with BatchNorm (`SmallCNN` with 8 and 16 channels, then a linear classifier)
# on the 8x8 images. Here the convolutions are followed by BatchNorm, so the grid's lack of a scale is harmless for
# them, as in the thesis's ResNets.

# %%
cnn_rows = []
if cfg.cnn_seeds:
    img = digits(flat=False, device=dev)
    cnn_common = dict(precision_epochs=cfg.cnn_epochs[0], finetune_epochs=cfg.cnn_epochs[1],
                      batch_size=cfg.batch_size, lr_w=cfg.cnn_lr[0], lr_ft=cfg.cnn_lr[1], momentum=cfg.momentum)
    for seed in cfg.cnn_seeds:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        cu = sm.uniform_pipeline(SmallCNN(cfg.channels).to(dev), img, [2], generator=gen, **cnn_common)
        for ld in cfg.cnn_lam_d:
            torch.manual_seed(seed)
            cnn = SmallCNN(cfg.channels).to(dev)
            d_cnn = sum(m.weight.numel() for m in cnn.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
            r = sm.smol_pipeline(cnn, img, ld / d_cnn, lr_s=cfg.lr_s, p_init=cfg.p_init, shuffle=False,
                                 generator=gen, **cnn_common)
            cnn_rows.append((seed, ld, r, cu))
    display(Markdown("| seed | λd | bpp | SMOL err before / after % | SMOL* bpp | SMOL* err after % | uniform 2-bit "
                     "before / after % | FP % |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(
        f"| {s} | {ld:g} | {r['bpp']:.2f} | {100 * r['err_before']:.1f} / {100 * r['err_after']:.1f} "
        f"| {r['bpp_zpa']:.2f} | {100 * r['err_zpa_after']:.1f} | {100 * cu['err_u2_before']:.1f} / "
        f"{100 * cu['err_u2_after']:.1f} | {100 * cu['err_fp']:.1f} |" for s, ld, r, cu in cnn_rows)))

# %% [markdown]
# ### Precision training versus fine-tuning
#
# The thesis splits 650 epochs as 350 of precision training and 300 of fine-tuning, and reports (Figure 5.7) that
# the bits per parameter change a lot while precision training gets fewer than about 250 epochs and then settle
# near 2.5 bpp. Here the total budget is fixed and the fraction given to precision training varies (one seed).

# %% mystnb={"image": {"alt": "Bits per parameter (blue, left axis) and test error after fine-tuning (orange, right axis) against the number of precision-training epochs out of a fixed total: the more epochs go to precision training, the fewer bits SMOL ends with, and the test error rises slowly as the fine-tuning share shrinks."}}
split_rows = []
ld_split = ld2
for frac in cfg.split_fracs:
    t1 = max(1, int(round(frac * cfg.split_total)))
    gen = torch.Generator().manual_seed(seed0)
    model = make_model(seed0)
    r = sm.smol_pipeline(model, data, ld_split / n_quant, lr_s=cfg.lr_s, p_init=cfg.p_init, zpa=False,
                         shuffle=False, weights=quantized_names(model), generator=gen,
                         **{**common, "precision_epochs": t1, "finetune_epochs": cfg.split_total - t1})
    split_rows.append((t1, r["bpp"], r["err_after"]))
fig, ax = plt.subplots(figsize=(6.5, 4))
(l1,) = ax.plot([t for t, _, _ in split_rows], [b for _, b, _ in split_rows], "o-", color="tab:blue")
ax.set(xlabel=f"precision-training epochs (of {cfg.split_total})", title=f"λd = {ld_split:g}")
ax.set_ylabel("bpp", color="tab:blue")
ax2 = ax.twinx()
(l2,) = ax2.plot([t for t, _, _ in split_rows], [100 * e for _, _, e in split_rows], "s--", color="tab:orange")
ax2.set_ylabel("test error after FT %", color="tab:orange")
ax.legend([l1, l2], ["bits per parameter", "test error after fine-tuning"], fontsize=8, ncol=2,
          loc="upper center", bbox_to_anchor=(0.5, -0.2))
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Activations (SMOL-A)
#
# For an activation tensor $u$ the thesis trains one $s$ per element and perturbs $u + \tfrac{M}{2}\sigma(s)
# \odot \epsilon$, with $M$ the activation's range; for ReLU it clips with PACT {cite}`choi2018pact` at a trainable
# level $\alpha$, so $M = \alpha$. After training, $s$ becomes an integer precision and $u$ is quantized. The thesis
# gives no activation grid; `ActivationSMOL` uses $2^p$ uniform levels on $[0, \alpha]$. Below, the MLP's weights
# stay in full precision and only its two hidden activations (64 each) are learned, then compared with PACT at a
# uniform 2 and 3 bits.

# %%
if cfg.act_epochs[0] > 0:
    torch.manual_seed(seed0)
    gen = torch.Generator().manual_seed(seed0)
    amodel = make_model(seed0)
    acts = sm.add_activation_smol(amodel, data.x_train[:8])
    asmol = sm.SMOL(amodel).set_mode("fp")
    w_opt = torch.optim.SGD(asmol.model_parameters(), lr=cfg.lr_w, momentum=cfg.momentum)
    a_opt = torch.optim.Adam([a.s for a in acts], lr=cfg.lr_s)
    sm.precision_training(amodel, None, data, cfg.act_epochs[0], cfg.batch_size, w_opt, a_opt, lam=0.0,
                          activations=acts, lam_act=cfg.act_lam / sum(a.s.numel() for a in acts), generator=gen)
    asmol.set_mode("fp")
    trained_act = asmol.state()
    act_rows = []
    for label, setp in [("SMOL-A", None), ("PACT 2-bit", 2), ("PACT 3-bit", 3)]:
        asmol.load_state(trained_act)
        for a in acts:
            if setp is None:
                a.allocate()
            else:
                a.precision.fill_(setp)
                a.mode = "quant"
        bpa = float(torch.cat([a.precision.flatten() for a in acts]).float().mean())
        e0 = evaluate(amodel, data.x_test, data.y_test)[1]
        fit(amodel, torch.optim.SGD(asmol.model_parameters(), lr=cfg.lr_ft, momentum=cfg.momentum), data,
            cfg.act_epochs[1], cfg.batch_size, generator=gen, eval_every=cfg.act_epochs[1])
        act_rows.append((label, bpa, e0, evaluate(amodel, data.x_test, data.y_test)[1]))
    display(Markdown("| activations | bits per activation | err before / after FT % |\n|---|---|---|\n" + "\n".join(
        f"| {lab} | {b:.2f} | {100 * e0:.1f} / {100 * e1:.1f} |" for lab, b, e0, e1 in act_rows)
        + f"\n\n*Seed {seed0}, full-precision weights; the PACT rows reuse the same trained network and clip "
          "levels.*"))

# %% [markdown]
# ## 6. What the bits cost
#
# Average bits per parameter (the thesis's metric; 32 / bpp is its compression ratio) counts storage. Compute is
# counted in bit-operations: a weight of $p$ bits multiplying an activation of $b_a$ bits costs $p \cdot b_a$ per
# use, and a convolution uses each weight once per output position. Per layer, for the SMOL network nearest 2 bits
# and for uniform 2 bits, with 8-bit activations:

# %%
probe = make_model(seed0)
prec_modules = {n.rsplit(".", 1)[0]: p for n, p in results[ld2][0]["precisions"].items()}
b_smol = qz.bops(probe, data.x_test[:2], prec_modules, activation_bits=8)
b_uni = qz.bops(probe, data.x_test[:2], {n: torch.tensor(2) for n in prec_modules}, activation_bits=8)
for n in prec_modules:
    print(f"layer {n}: SMOL {b_smol[n] / 1e3:.1f} kBOPs, uniform 2-bit {b_uni[n] / 1e3:.1f} kBOPs")
print(f"model bits: SMOL {qz.model_bits(prec_modules)} ({qz.bits_per_parameter(prec_modules):.2f} bpp), "
      f"uniform 2-bit {2 * n_quant}, full precision {32 * n_quant}")
# the thesis's energy estimate (5.4.4): last ResNet-20 conv, SMOL 1/2/3 bits on 74/24.5/1.5 % vs BSQ 2 bits
power = (0.74 * 1 + 0.245 * 2.41 + 0.015 * 3.83) / 2.41
latency = (0.74 * 1 + 0.245 * 1.91 + 0.015 * 2.10) / 1.91
print(f"power ratio {power:.3f}, latency ratio {latency:.3f}, energy ratio {power * latency:.3f}")

# %% [markdown]
# The last line re-derives the thesis's hardware estimate (5.4.4): with 2- and 3-bit multiplies costing 2.41 and
# 3.83 times the power and 1.91 and 2.10 times the latency of 1-bit ones, SMOL's mix in the last convolution of
# ResNet-20 needs 57.6 % of the power and 64.9 % of the latency of BSQ's uniform 2 bits: an energy ratio of 0.374,
# the "62.7 % reduction" of the text (before the roughly 25 % control overhead it mentions).
#
# ## 7. What did not reproduce, and what we could not test
#
# * **SMOL beating full precision.** The thesis's CIFAR and ImageNet tables put several SMOL models above their
#   full-precision baselines and credit the noise with a regularizing effect. Here the best SMOL and SMOL* errors
#   after fine-tuning are within noise of full precision, not clearly below it (numbers in the table of section 4;
#   one test image is 0.19 points).
# * **The shuffled-precision gap after re-training.** Table 5.6 reports 91.5 % against 89.3 % *after* 300 epochs
#   of re-training. Before fine-tuning our gap is large (above); after fine-tuning it mostly closes on digits, as
#   the digest's prototypes also found, so only the before-fine-tuning claim is asserted.
# * **SMOL-A against PACT** (Table 5.5: SMOL-A 1.8 bits per activation at 90.3 % against PACT 2 bits at 89.2 %)
#   is not reproduced as a comparison: our single SMOL-A run landed below 2 bits per activation and its error
#   is *above* PACT's at 2 bits (table in section 5), and we did not tune $\lambda$ to match the bits. The grid is
#   also our choice, since the thesis does not give one.
# * **The layer pattern** holds only in the small sense of section 5 (three layers, first and last above the
#   middle); the deeper structure the thesis describes for ResNet-20 needs a deeper network.
# * **The 250-epoch saturation of Figure 5.7** is a property of the thesis's budget and learning rate for $s$;
#   the split figure above is the digits analogue, not a test of that number.
#
# ## 8. At the thesis's scale
#
# With `SCALE = "full"` (and CIFAR-10's python batches under `$EFFCOURSE_DATA/cifar10`) the cells of section 4 run
# the thesis's CIFAR-10 protocol: 350 epochs of precision training and 300 of fine-tuning, SGD with momentum 0.9
# from learning rate 0.1 divided by 10 (assumed) at epochs 250, 500 and 600, batch 128, weight decay $10^{-4}$,
# crops and flips, Adam at $10^{-3}$ on $s$, $p_\text{init} = 8$, BatchNorm and 1x1 shortcuts in full precision.
# The model is the thesis's ResNet-20 (`effcourse.core.models.ResNet20`). Thesis Table 5.1 (ResNet-20, CIFAR-10, full-precision activations), to compare against:
#
# | method | granularity | bpp (ratio) | test acc % |
# |---|---|---|---|
# | BSQ-FP / LQ-FP | — | 32 (1.0) | 92.6 / 92.1 |
# | LQ-Nets, SLB | network | 2.0 (16.0) | 91.8, 92.0 |
# | BSQ | layer | 2.7 (11.9) | 91.9 |
# | SMOL-L | layer | 2.4 (13.3) | 92.4 |
# | SMOL | parameter | 2.1 (15.2) | 92.5 |
# | SMOL* | parameter | 1.7 (18.8) | 92.6 |
# | SMOL | parameter | 2.8 (11.4) | 93.0 |
#
# On ImageNet the thesis reports ResNet-18 SMOL* at 2.3 bpp weights / 4-bit activations with 69.9 % top-1 (FP
# 69.6 %), and ResNet-50 SMOL* at 0.8 bpp with 74.6 % (FP 76.1 %); two compression ratios in its Table 5.3 are
# misprinted (7.0 should be 7.8 for 4.1 bpp, 5.9 is 6.0 for 5.3 bpp).
#
# ## Claims
#
# Every row below was asserted when this page was built (rows marked *not asserted* ran at a scale too small for
# the claim). The thesis's numbers come from ResNet-20 on CIFAR-10; ours from the digits MLP above.

# %%
run.claims_table()
