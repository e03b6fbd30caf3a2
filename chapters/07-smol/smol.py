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

# %% tags=["remove-cell"]
# effcourse setup: on Colab, Binder or a copy of this notebook, install the book's effcourse if it is missing.
# EFFCOURSE_INSTALL replaces what is installed: a local checkout, a wheel or any pip requirement.
import importlib.util

if importlib.util.find_spec("effcourse") is None:
    import os
    import subprocess
    import sys

    _requirement = os.environ.get("EFFCOURSE_INSTALL") or "effcourse @ git+https://github.com/effcourse/effcourse@v0.1.0"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _requirement], check=True)
    importlib.invalidate_caches()

# %% tags=["parameters"]
import os

SCALE = os.environ.get("EFFCOURSE_SCALE", "book")  # one of "smoke", "book", "full"
SEED = 0
DEVICE = "auto"

# %% [markdown]
# ## Set-up
#
# `Run` fixes the scale, the seed and the device, and `cfg` holds this scale's configuration
# (`effcourse/smol/config.py`). The data set comes from the shared factory: at smoke and book scale the 8x8 digits
# as flat rows for an MLP, at full scale CIFAR-10 images, with their crops and flips, for ResNet-20. Everything the
# chapter runs lives in `effcourse.smol`: the quantizer in `fixed_point`, SMOL itself in `parametrization` and
# `training`, the baselines in `baselines`, and one function per experiment in `experiments` and `figures`, which
# the cells below call and whose results they discuss.
#
# Every random stream of the chapter comes from `SEED`: `run.seeds(k)` hands out the experiment seeds
# $1000\,\mathrm{SEED}, 1000\,\mathrm{SEED} + 1, \dots$ (model initialization, minibatch order and training noise of
# each training run), and `run.generator_for(offset)` a generator for the rest (the random weights of the exact checks,
# the quadratic's noise, the augmentation). Another `SEED` is an independent replicate of every experiment. The
# train/test split of the digits is the data set's fixed one, as the thesis uses CIFAR-10's fixed split.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import effcourse.smol as sm
from effcourse import Run
from effcourse.core.data import augmentation, dataset
from effcourse.smol import experiments as ex
from effcourse.smol import figures
from effcourse.smol import fixed_point as qz
from effcourse.smol import sweep as smol_sweep

run = Run("07-smol", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
data = dataset(cfg.dataset, flat=cfg.flat, device=dev)
seeds = run.seeds(cfg.n_seeds)  # the training runs of sections 4-6; the CNN reuses the first cfg.n_cnn_seeds
augment = ex.with_generator(augmentation(cfg.dataset), run.generator_for(200))
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
s_rand = torch.randn(1000, dtype=torch.float64, generator=run.generator_for(300)) * 4
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
q_02_2, q_02_0 = float(qz.quantize(torch.tensor(0.2), 2)), float(qz.quantize(torch.tensor(0.2), 0))
print("q(0.2, 2) =", q_02_2, "  q(0.2, 0) =", q_02_0)
checks = ex.check_quantizer(n=20000, max_bits=8, seed=run.seeds(1, offset=301)[0])
print("closed form = nearest enumerated grid point, error <= 2^(1-p), p = 1..8:", checks["closed_form"])
print("ZPA never raises the error (20,000 random weights):", checks["zpa_never_up"],
      "; fires iff |w| <= 2^-p:", checks["zpa_rule"])

# %%
run.claim("q(0.2, 2) = 0.5 and q(0.2, 0) = 0", q_02_2 == 0.5 and q_02_0 == 0.0, kind="math",
          thesis="q(0.2, 2) = 0.5, q(0.2, 0) = 0 (5.2.4)", ours=f"q(0.2, 2) = {q_02_2}, q(0.2, 0) = {q_02_0} (exact)")
run.claim("closed-form quantizer = nearest point of the enumerated grid", checks["closed_form"], kind="math",
          thesis="q maps w to the closest value representable with p bits",
          ours=("errors equal" if checks["closed_form"] else "errors differ") + " (float64, allclose: 1e-8 + 1e-5 rel) "
               "on 20,000 random weights, p = 1..8")

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
figures.basin_figure(lams=(0.01, 0.05))
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
# `nn.Module` whose weight it wraps (`effcourse.smol.SeparableQuadratic`; SGD on $w$, Adam on $s$, $K$ noise draws
# per step), should find these precisions without knowing the formula.

# %%
h, c, lam_quad = [1.0, 10.0, 100.0, 1000.0], [0.6, -0.3, 0.45, -0.8], 1e-3
quad = sm.learn_quadratic_precisions(h, c, lam_quad, steps=cfg.quad_steps, samples=cfg.quad_samples,
                                     seed=run.seeds(1, offset=100)[0], device=dev)
print("curvature h:     ", h)
print("learned p:       ", np.round(quad.p_learned, 3))
print("closed form p*:  ", np.round(quad.p_star, 3))
print("max |w - c|:     ", float(np.abs(quad.w_final - np.array(c)).max()))
run.metric("quadratic/max_gap_bits", quad.max_gap)
increasing = bool(np.all(np.diff(quad.p_learned) > 0))
run.claim("learned precision = closed-form optimum on a separable quadratic (to 0.15 bits)",
          quad.max_gap < 0.15 and increasing, kind="math",
          thesis="Fig. 5.2: precision grows with the curvature of each axis (picture only)",
          ours=f"max |p - p*| = {quad.max_gap:.3f} bits over h = 1..1000 (tolerance 0.15: the noise of "
               f"{cfg.quad_samples}-sample SGD), learned p increasing in h: {increasing}",
          value=quad.max_gap, min_scale="book")

# %% mystnb={"image": {"alt": "Left: the real-valued precision SMOL learns for each of four weights of a separable quadratic against training steps, with each weight's closed-form optimum as a dotted line (higher for higher curvature h). Right: loss contours of two of the weights with the learned noise box and the fixed-point grid those precisions allow."}}
figures.quadratic_figure(quad, axes=(0, 2))
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
# The protocol follows Algorithm 5 at a CPU budget, and departs from the thesis's grid where the budget or the
# model asks for it: precision training: SGD (momentum 0.9, no learning-rate decay) on $w$, Adam on $s$
# with learning rate $10^{-2}$ (the thesis's $10^{-3}$ moves $s$ at most about $10^{-3}$ per step, far too slow
# for the few thousand steps here), $p_\text{init} = 8$, one noise sample per step, $w$ clipped to
# $\pm(2 - \sigma(s))$. Then floor to integer precisions, optionally ZPA, and straight-through fine-tuning.
# The thesis trains 350 epochs and fine-tunes 300; the numbers of epochs here are printed below.
# We quote $\lambda d$, $\lambda$ times the number of quantized weights, because the penalty is a sum: the thesis's
# ResNet-20 $\lambda \in \{5 \cdot 10^{-7}, 7 \cdot 10^{-7}, 10^{-6}\}$ is $\lambda d \approx 0.13$ to $0.27$; our
# grid of $\lambda d$ is wider and reaches lower, because on the MLP the thesis's values land near 1 bit per weight.
#
# The baselines get the same budget: a full-precision network trained in the same weight domain for the
# precision-training epochs, then either trained on at full precision or quantized *uniformly* to $k$ bits on the
# same grid and fine-tuned with the same straight-through estimator. Every method is run from the same
# initialization on each of the seeds, so differences between methods are paired by seed.

# %%
n_quant = sm.count_quantized(sm.make_model(cfg, data, seeds[0], dev))
print(data, "; quantized weights d =", n_quant)
print(f"epochs: {cfg.precision_epochs} precision training + {cfg.finetune_epochs} fine-tuning; λd: {cfg.lam_d};"
      f" uniform bits: {cfg.uniform_bits}; experiment seeds: {seeds}")

# %%
if run.scale == "full":  # the thesis's ResNet-20 runs come from the sweep (see "At the thesis's scale")
    sweep = smol_sweep.compare_with_uniform(run.sweep_results(), cfg, data, seeds)
else:
    sweep = ex.compare_with_uniform(cfg, data, seeds, dev, augment=augment)
n_test, k = len(data.y_test), len(seeds)
run.table(sweep.rows(), fmt={"bpp": ".2f", "test err before FT %": ".2f", "test err after FT %": ".2f"},
          caption=f"Means over experiment seeds {seeds}; {n_test} test images (one image = {100 / n_test:.2f} "
                  "points).")

# %% mystnb={"image": {"alt": "Two panels of test error (percent) against average bits per parameter, before and after fine-tuning, for SMOL (blue), SMOL with ZPA (green), uniform k-bit quantization (grey), the same precisions shuffled (red crosses, before fine-tuning only) and full precision (dotted line); small dots are single seeds."}, "figure": {"caption": "SMOL on the digits MLP: test error against average bits per parameter for SMOL, SMOL with zero-precision allocation (SMOL*) and uniform k-bit quantization, before (left) and after (right) fine-tuning; small dots are single seeds.", "name": "fig-smol-digits"}}
figures.sweep_figure(sweep)
plt.show()

# %% [markdown]
# Reading {numref}`Figure %s <fig-smol-digits>` and the table above, with this run's numbers (means over the seeds).
# The comparison that matters for a mixed-precision method is at *equal or fewer* bits: SMOL with $\lambda d$ chosen
# so that its mean bpp is just below 2, against uniform 2-bit, before and after fine-tuning.

# %%
ld2, below2 = sweep.nearest(bpp=2.0), sweep.below(bpp=2.0)  # λd nearest 2 bpp; the λd below 2 bpp
ld_b = below2[0] if below2 else cfg.lam_d[-1]
pct = {key: 100 * sweep.mean(key) for key in ("err_fp", "err_u1_after", "err_u2_before", "err_u2_after")}
sm_pct = {(key, ld): 100 * sweep.mean(key, ld) for key in ("err_before", "err_after", "err_zpa_after")
          for ld in {ld2, ld_b}}
bpp_of = {ld: sweep.mean("bpp", ld) for ld in cfg.lam_d}
d_before, d_after = pct["err_u2_before"] - sm_pct["err_before", ld_b], pct["err_u2_after"] - sm_pct["err_after", ld_b]
zpa_drop, zpa_move = sweep.zpa_savings(), sweep.zpa_error_change()
display(Markdown(
    f"*Before fine-tuning*, SMOL at {bpp_of[ld_b]:.2f} bpp (λd = {ld_b:g}) has {sm_pct['err_before', ld_b]:.2f} % "
    f"test error against {pct['err_u2_before']:.2f} % for uniform 2-bit: "
    + (f"{d_before:.2f} points better with fewer bits. " if d_before > 0 else f"{-d_before:.2f} points *worse*. ")
    + f"*After fine-tuning* the same SMOL networks end at {sm_pct['err_after', ld_b]:.2f} % against "
    f"{pct['err_u2_after']:.2f} % for uniform 2-bit: "
    + ((f"SMOL is **worse by {-d_after:.2f} points**"
        + (", so its advantage before fine-tuning does not survive it. " if d_before > 0 else ". "))
       if d_after < 0 else f"SMOL is {d_after:.2f} points better. ")
    + f"At {bpp_of[ld2]:.2f} bpp (λd = {ld2:g}) SMOL ends at {sm_pct['err_after', ld2]:.2f} %, full precision at "
    f"{pct['err_fp']:.2f} %, uniform 1-bit at {pct['err_u1_after']:.2f} %. ZPA saves "
    f"{min(zpa_drop.values()):.2f} to {max(zpa_drop.values()):.2f} bpp and changes the error after fine-tuning by "
    f"{min(zpa_move.values()):+.2f} to {max(zpa_move.values()):+.2f} points (negative: ZPA helps), "
    f"so SMOL* at {bpp_of[ld2] - zpa_drop[ld2]:.2f} bpp ends at {sm_pct['err_zpa_after', ld2]:.2f} %."))

# %% [markdown]
# Why the two comparisons can disagree. Before fine-tuning, every method is judged on weights that were trained
# for something else: SMOL's under noise of exactly the half-width its precisions will round by, the uniform
# baseline's at full precision and then rounded. SMOL should win that comparison, since it is the only method that
# saw its own rounding coming. Fine-tuning at fixed precisions then lets the weights of every method adapt to
# their grid, and on a task as small as the digits a few bits per weight are enough for that adaptation to undo
# most of the damage, whichever way the bits were allocated. The thesis's comparisons (Table 5.1) are all *after*
# training, on ResNet-20, where the network has much less slack; so the after-fine-tuning comparison is the one
# that speaks to the thesis, and the before-fine-tuning one isolates what the precision search itself found.
#
# Now the thesis's claims, at this scale. A claim that compares methods states its criterion over the seeds in its
# name (mean, median, every seed) and a threshold with a margin; the margins were chosen on development base seeds
# (0 to 4), before the claims were tested on base seeds never used in development. The criteria:
#
# * Differences between methods are **paired by seed**: SMOL and the uniform baseline of one seed start from the
#   same initialization and see the same minibatches, so the per-seed difference removes most of the
#   seed-to-seed variation that a difference of means would keep.
# * The test set has 540 images, so one image is 0.19 points of error and a "win" by one image is noise. Margins
#   on test error are therefore at least 0.5 points (about three images) on the *median* over seeds, which one bad
#   seed cannot move.
# * Bits per parameter are not quantized the same way (a mean over 8,576 weights), and move little between seeds,
#   so the bpp claims are stated on every seed, with a margin of 0.1 bpp on each step of $\lambda d$.
# * Checks of the mathematics (kind *math*) are exact or carry their tolerance in their text; they are not
#   statistics over seeds, but they do use weights and noise drawn from this run's seed.

# %%
bpps, fp_err, steps = sweep.bpp(), sweep.mean("err_fp"), sweep.bpp_steps()
for ld, b in zip(cfg.lam_d, bpps):
    run.metric(f"smol/bpp_lamd{ld:g}", b)
    run.metric(f"smol/err_before_lamd{ld:g}", sweep.mean("err_before", ld))
    run.metric(f"smol/err_after_lamd{ld:g}", sweep.mean("err_after", ld))
run.metric("uniform/err_fp", fp_err)
run.metric("uniform/err_u2_before", sweep.mean("err_u2_before"))
run.claim(f"on each of {k} seeds: bpp falls by >= 0.1 from each λd to the next", steps.min() >= 0.1,
          kind="empirical", thesis="R20: lambda 5e-7 -> 2.8 bpp, 1e-6 -> 2.1 bpp",
          ours="λd " + " / ".join(f"{ld:g}" for ld in cfg.lam_d) + " -> " + " / ".join(f"{b:.2f}" for b in bpps)
          + f" bpp (mean); smallest step on any seed {steps.min():.2f}", value=steps.min(), min_scale="book")
gap2 = 100 * (sweep.mean("err_after", ld2) - fp_err)
run.claim(f"mean over {k} seeds: at about 2 bpp, error after fine-tuning within 3 points of full precision",
          gap2 <= 3.0, kind="empirical", thesis="R20: SMOL 92.5 % at 2.1 bpp vs FP 92.1-92.6 %",
          ours=f"{bpp_of[ld2]:.2f} bpp: err {sm_pct['err_after', ld2]:.2f} % vs FP {100 * fp_err:.2f} % "
               f"(gap {gap2:+.2f} points)", value=gap2, min_scale="book")

# %%
print("ZPA: bpp saved per λd:", {ld: round(v, 2) for ld, v in zpa_drop.items()})
print("ZPA: change of test error after FT (points; negative = better):",
      {ld: round(v, 2) for ld, v in zpa_move.items()})
run.claim("ZPA never raises any weight's quantization error", checks["zpa_never_up"] and sweep.zpa_never_up(),
          kind="math", thesis="guaranteed by construction (5.2.4)",
          ours="exact comparison (no tolerance) on 20,000 random weights and on every trained weight, every seed and "
               "λ: " + ("never raised" if checks["zpa_never_up"] and sweep.zpa_never_up() else "raised somewhere"))
run.claim(f"mean over {k} seeds: ZPA saves >= 0.3 bpp and raises error after FT by <= 1 point, at every λd",
          min(zpa_drop.values()) >= 0.3 and max(zpa_move.values()) <= 1.0, kind="empirical",
          thesis="DCGAN: -1 to -2 bpp typical; R20 SMOL* 1.7 bpp at 92.6 %",
          ours=f"bpp -{min(zpa_drop.values()):.2f} to -{max(zpa_drop.values()):.2f}; error change "
               f"{min(zpa_move.values()):+.2f} to {max(zpa_move.values()):+.2f} points",
          value=min(zpa_drop.values()), min_scale="book")

# %% [markdown]
# **The shuffle control** (the thesis's Table 5.6) asks whether SMOL learned *which* weights need bits, or only
# *how many* bits each layer needs. Within each layer the learned precisions are permuted at random among the
# weights: every layer keeps its bit count and its histogram of precisions, and only the assignment of precisions
# to weights is lost. If SMOL's per-weight choices carry information, the shuffled network is worse, on the test
# error and on the training loss (which, unlike the test error, is not counted in whole images). The claim takes
# each seed's gap averaged over $\lambda d$, then the median over seeds.
#
# **SMOL against uniform 2-bit** is the comparison a reader of Table 5.1 looks for: fewer bits than two per
# weight, and a lower error. It is made at the smallest $\lambda d$ whose mean bpp is below 2, paired by seed, once
# before fine-tuning and once after. Both rows are *reported*, not asserted: on the development base seeds the
# median per-seed difference, before as after fine-tuning, was within a few test images of zero and changed sign
# from one base seed to another, so neither direction holds at every base seed. Rather than lower the margin until
# a lead of one image would count, the rows show this run's numbers and stay out of what the chapter asserts.

# %%
shuffle_gaps, shuffle_loss = sweep.shuffle_gaps(), sweep.shuffle_loss_gaps()
print("shuffled minus learned, test error before FT (points), rows = λd, columns = seeds:\n",
      np.round(shuffle_gaps, 1))
print("per seed, mean over λd:", np.round(shuffle_gaps.mean(0), 2))
print("shuffled minus learned, training loss before FT, per seed (mean over λd):", np.round(shuffle_loss.mean(0), 3))
run.metric("shuffle/mean_gap_points", float(shuffle_gaps.mean()))
shuffle_med = float(np.median(shuffle_gaps.mean(0)))
shuffle_held = run.claim(
    f"median over {k} seeds: shuffling the learned precisions raises error before FT by >= 0.5 points",
    shuffle_med >= 0.5, kind="empirical",
    thesis="Table 5.6: re-trained 91.5 % (same) vs 89.3 % (shuffled), after 300 epochs",
    ours=f"per-seed gap (mean over λd) {', '.join(f'{g:+.2f}' for g in shuffle_gaps.mean(0))} points; median "
         f"{shuffle_med:+.2f}; training loss higher when shuffled on {int((shuffle_loss.mean(0) > 0).sum())} of {k}",
    value=shuffle_med, min_scale="book")

# %%
d_seed = 100 * (sweep.per_seed("err_u2_before") - sweep.per_seed("err_before", ld_b))
print(f"uniform 2-bit minus SMOL at λd = {ld_b:g}, error before FT, per seed (points):", np.round(d_seed, 2))
beats_u2 = run.claim(
    f"median over {k} seeds: SMOL below 2 bpp beats uniform 2-bit before FT by >= 0.5 points",
    bool(below2) and float(np.median(d_seed)) >= 0.5, kind="empirical", assert_claim=False,
    thesis="R20: SMOL 92.5 % at 2.1 bpp vs LQ-Nets 2-bit 91.8 %, SLB 2-bit 92.0 % (after training)",
    ours=f"SMOL {bpp_of[ld_b]:.2f} bpp (λd = {ld_b:g}); per-seed lead {', '.join(f'{d:+.2f}' for d in d_seed)} "
         f"points, median {float(np.median(d_seed)):+.2f}", value=float(np.median(d_seed)), min_scale="book")
d_after_seed = 100 * (sweep.per_seed("err_u2_after") - sweep.per_seed("err_after", ld_b))
after_held = run.claim(
    f"median over {k} seeds: after FT, SMOL below 2 bpp is no worse than uniform 2-bit", bool(below2)
    and float(np.median(d_after_seed)) >= 0, kind="empirical", assert_claim=False,
    thesis="R20: SMOL 92.5 % at 2.1 bpp vs LQ-Nets 2-bit 91.8 %, SLB 2-bit 92.0 %",
    ours=f"SMOL {bpp_of[ld_b]:.2f} bpp; per-seed lead {', '.join(f'{d:+.2f}' for d in d_after_seed)} points",
    value=float(np.median(d_after_seed)))

# %% [markdown]
# ## 5. Where the bits go
#
# **Per layer.** The histograms below are the precisions SMOL gave each layer (the first seed, the $\lambda$
# closest to 2 bits): whether they are a real mixture of bit widths or a uniform assignment in disguise is what
# they show. The thesis's per-layer picture (Figure 5.6, SMOL-L on ResNet-20) has the first convolution and the
# final linear layer at much higher precision than the rest.

# %% mystnb={"image": {"alt": "One histogram per weight matrix of the digits MLP (input, hidden-to-hidden, classifier) of the learned bits per weight, with the layer's mean in the title."}}
prec = sweep.smol[ld2][0]["precisions"]
names = list(prec)
figures.layer_histograms(prec)
plt.show()
layer_means = sweep.layer_means()
run.table([{"λd": ld, **means} for ld, means in layer_means.items()], fmt={n: ".2f" for n in names},
          caption="Mean learned precision per layer (bits), averaged over seeds.")

# %% [markdown]
# Figure 5.6's pattern, in miniature, would have the hidden-to-hidden matrix (the largest and most redundant) get
# the fewest bits, and the first layer and the classifier (whose every weight feeds a logit directly) more. The
# thesis's figure is for one precision per layer on ResNet-20; here the precisions are per weight and averaged per
# layer. At the largest $\lambda$ nearly every weight sits at the 1-bit floor, where no layer can be below
# another, so the claim is tested at the $\lambda d$ whose mean bpp is at least 1.25.

# %%
margins = sweep.layer_margins()  # rows λd; columns: first - middle, last - middle (bits, seed means)
tested = [i for i, ld in enumerate(cfg.lam_d) if bpp_of[ld] >= 1.25]
print("first - middle, last - middle (bits) per λd:", {ld: tuple(np.round(m, 2)) for ld, m in zip(cfg.lam_d, margins)})
pattern = bool(tested) and margins[tested, 0].min() >= 0.1 and margins[tested, 1].min() >= 0.3
run.claim(f"mean over {k} seeds: first layer >= 0.1 and last >= 0.3 bits above the middle one (bpp >= 1.25)",
          pattern, kind="empirical", thesis="Fig. 5.6 (SMOL-L, R20): first conv and final FC much higher than the rest",
          ours="first - middle / last - middle at λd = " + ", ".join(
              f"{cfg.lam_d[i]:g}: {margins[i, 0]:+.2f} / {margins[i, 1]:+.2f}" for i in tested)
          + (f" bits (tested); at the other λd {margins[len(tested):].min():+.2f} bits at least"
             if len(tested) < len(cfg.lam_d) else " bits"),
          value=float(margins[tested, 0].min()) if tested else None, min_scale="book")
display(Markdown("So at every tested $\\lambda d$ the middle matrix gets the fewest bits and the classifier the "
                 "most, as in Figure 5.6." if pattern else "So the pattern of Figure 5.6 does **not** show up at "
                 "every tested $\\lambda d$ in this run (margins above)."))

# %% [markdown]
# **One precision per layer (SMOL-L)** and a cheap mixed-precision baseline. SMOL-L shares one $s$ per layer; we
# charge its penalty for every weight the layer stores ($n_l (p_l - 1)$, so $\lambda$ means the same as for
# per-weight SMOL; the thesis does not say which it used). The baseline is a *sensitivity* allocation in the
# spirit of HAWQ {cite}`dong2019hawq`: measure how much the training loss rises when each layer alone is
# quantized to $b$ bits, then start all layers at 8 bits and repeatedly take a bit from the layer whose loss rises
# least per bit saved, until the average matches SMOL-L's. Both start from the same trained networks as above
# (the baseline from the full-precision one) and get the same fine-tuning.

# %%
seed0 = seeds[0]
if run.scale == "full":
    layer_rows = smol_sweep.layerwise_comparison(run.sweep_results(), cfg, seed0)
else:
    layer_rows = ex.layerwise_comparison(cfg, data, seed0, dev, augment=augment)
display(run.table([{c: r[c] for c in ex.LAYER_COLUMNS} for r in layer_rows],
                  fmt={"λd": "g", "bpp": ".2f", "sensitivity bpp": ".2f"},
                  caption=f"Seed {seed0}. Layers in order: {names}."))
as_good = [r for r in layer_rows if r["sensitivity_err_after"] <= r["err_after"]
           and r["sensitivity bpp"] <= r["bpp"] + 1e-9]
display(Markdown(
    f"After fine-tuning, the cheap sensitivity allocation is as good as SMOL-L or better (error at most SMOL-L's, at "
    f"no more bits) in {len(as_good)} of {len(layer_rows)} rows: "
    + "; ".join(f"λd = {r['λd']:g}: {100 * r['sensitivity_err_after']:.1f} % at {r['sensitivity bpp']:.2f} bpp vs "
                f"SMOL-L {100 * r['err_after']:.1f} % at {r['bpp']:.2f} bpp" for r in layer_rows) + ". "
    + ("On this network, learning one precision per layer buys nothing over measuring each layer's sensitivity "
       "once; the thesis compares SMOL-L with BSQ (Table 5.1), not with such a baseline."
       if len(as_good) == len(layer_rows) else "One seed only, so read these as an illustration, not a ranking.")))

# %% [markdown]
# ### A small CNN
#
# The same procedure on a two-layer CNN with BatchNorm (`SmallCNN` with 8 and 16 channels, then a linear classifier)
# on the 8x8 images. Here the convolutions are followed by BatchNorm, so the grid's lack of a scale is harmless for
# them, as in the thesis's ResNets.

# %%
images = dataset(cfg.dataset, flat=False, device=dev)
cnn_rows = ex.cnn_comparison(cfg, images, seeds[:cfg.n_cnn_seeds], dev)
run.table(cnn_rows, columns=ex.CNN_COLUMNS, fmt={"λd": "g", "bpp": ".2f", "SMOL* bpp": ".2f",
                                                 "SMOL* err after %": ".1f", "FP %": ".1f"})

# %% [markdown]
# ### Precision training versus fine-tuning
#
# The thesis splits 650 epochs as 350 of precision training and 300 of fine-tuning, and reports (Figure 5.7) that
# the bits per parameter change a lot while precision training gets fewer than about 250 epochs and then settle
# near 2.5 bpp. Here the total budget is fixed and the fraction given to precision training varies (one seed), at
# the $\lambda d$ nearest 2 bpp; at full scale at the thesis's $\lambda = 7 \cdot 10^{-7}$, in its steps of 50 of
# the 650 epochs.

# %% mystnb={"image": {"alt": "Bits per parameter (blue, left axis) and test error after fine-tuning (orange, right axis) against the number of precision-training epochs out of a fixed total number of epochs."}}
ld_split = ld2 if cfg.split_lam_d is None else cfg.split_lam_d
if run.scale == "full":
    split_rows = smol_sweep.budget_split(run.sweep_results(), cfg, ld_split, seed0)
else:
    split_rows = ex.budget_split(cfg, data, ld_split, seed0, dev, augment=augment)
figures.budget_split_figure(split_rows, cfg.split_total, ld_split)
plt.show()

# %% [markdown]
# How to read the split: the bits are decided during precision training, so its length sets how far the penalty
# can push the precisions down, while the error after fine-tuning depends on how many epochs are left to adapt the
# weights to them. The thesis's choice (350 + 300) sits where the first has saturated. On one seed this is an
# illustration of the trade-off, not a measurement of where it saturates; no claim is made on it.

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
act_rows = ex.activation_comparison(cfg, data, seed0, dev)
run.table([{c: r[c] for c in ex.ACTIVATION_COLUMNS} for r in act_rows], ex.ACTIVATION_COLUMNS, fmt={"bits per activation": ".2f"},
          caption=f"Seed {seed0}, full-precision weights; the PACT rows reuse the same trained network and clip "
                  "levels.")

# %% [markdown]
# The comparison is made at whatever bits per activation SMOL-A lands on for this $\lambda$, one seed, against
# PACT at 2 and 3 bits from the same trained network: a fair comparison needs SMOL-A's bits to match PACT's, which
# would take a search over $\lambda$ that this chapter does not run. The outcome is discussed under "What did not
# reproduce".
#
# ## 6. What the bits cost
#
# Average bits per parameter (the thesis's metric; 32 / bpp is its compression ratio) counts storage. Compute is
# counted in bit-operations: a weight of $p$ bits multiplying an activation of $b_a$ bits costs $p \cdot b_a$ per
# use, and a convolution uses each weight once per output position. Per layer, for the SMOL network nearest 2 bits
# and for uniform 2 bits, with 8-bit activations:

# %%
# the thesis's energy estimate (5.4.4): last ResNet-20 conv, SMOL 1/2/3 bits on 74/24.5/1.5 % vs BSQ 2 bits
power = (0.74 * 1 + 0.245 * 2.41 + 0.015 * 3.83) / 2.41
latency = (0.74 * 1 + 0.245 * 1.91 + 0.015 * 2.10) / 1.91
print(f"power ratio {power:.3f}, latency ratio {latency:.3f}, energy ratio {power * latency:.3f}")
probe = sm.make_model(cfg, data, seed0, dev)
run.table(ex.cost_rows(probe, data.x_test[:2], prec, uniform_bits=2, activation_bits=8),
          fmt={"SMOL kBOPs": ".1f", "uniform 2-bit kBOPs": ".1f"},
          caption=f"SMOL at λd = {ld2:g} (seed {seed0}), 8-bit activations; full precision stores {32 * n_quant} bits.")

# %% [markdown]
# The printed line re-derives the thesis's hardware estimate (5.4.4): with 2- and 3-bit multiplies costing 2.41 and
# 3.83 times the power and 1.91 and 2.10 times the latency of 1-bit ones, SMOL's mix in the last convolution of
# ResNet-20 needs 57.6 % of the power and 64.9 % of the latency of BSQ's uniform 2 bits: an energy ratio of 0.374,
# the "62.7 % reduction" of the text (before the roughly 25 % control overhead it mentions).
#
# ## What did not reproduce
#
# * **The layer pattern** can hold only in the small sense of section 5 (three layers, first and last above the
#   middle); the deeper structure the thesis describes for ResNet-20 needs a deeper network.
# * **The 250-epoch saturation of Figure 5.7** is a property of the thesis's budget and learning rate for $s$;
#   the split figure above is the digits analogue, not a test of that number (at full scale the sweep runs the
#   thesis's split, and the claims of the next section test it).
# * **The shuffled-precision gap after re-training.** Table 5.6 reports 91.5 % against 89.3 % *after* 300 epochs
#   of re-training. We measure the gap only before fine-tuning (the shuffled precisions are not fine-tuned here);
#   the digest's prototypes found that on digits it mostly closes after fine-tuning, so only the
#   before-fine-tuning claim is made.
# * **SMOL-A's activation grid** is our choice, since the thesis does not give one, and we did not tune its
#   $\lambda$ to land at PACT's bits.
# * **Protocol.** Every departure from the thesis's grid is listed where it is made: the digits MLP instead of
#   ResNet-20 on CIFAR-10, a per-layer power-of-two scale, Adam on $s$ at $10^{-2}$ instead of $10^{-3}$, a few dozen
#   epochs instead of 350 + 300, no learning-rate decay, a wider grid of $\lambda d$, and a small CNN and SMOL-A
#   runs on one or two seeds only.
#
# The rest of this list depends on the run; this run's numbers:

# %%
best = min(min(sweep.mean("err_after", ld), sweep.mean("err_zpa_after", ld)) for ld in cfg.lam_d)
fp_gap = 100 * (best - fp_err)
act = {r["activations"]: r for r in act_rows}
notes = [f"**SMOL beating full precision.** The thesis's CIFAR and ImageNet tables put several SMOL models above "
         f"their full-precision baselines. Here the best SMOL or SMOL* error after fine-tuning is {100 * best:.2f} % "
         f"against {100 * fp_err:.2f} % for full precision ({fp_gap:+.2f} points; one test image is "
         f"{100 / n_test:.2f} points)" + (", not below it." if fp_gap >= 0 else ".")]
if d_after < 0:
    notes.append(f"**SMOL against uniform 2-bit after fine-tuning.** At {bpp_of[ld_b]:.2f} bpp SMOL ends "
                 f"{-d_after:.2f} points *worse* than uniform 2-bit ({sm_pct['err_after', ld_b]:.2f} % against "
                 f"{pct['err_u2_after']:.2f} %): with fine-tuning, spending the bits uniformly does as well on this "
                 "task, unlike the thesis's ResNet-20 (SMOL 92.5 % at 2.1 bpp, LQ-Nets 91.8 % at 2 bits).")
notes.append(f"**SMOL against uniform 2-bit before fine-tuning** is reported, not asserted (section 4): this run's "
             f"median lead over {k} seeds is {float(np.median(d_seed)):+.2f} points (per seed "
             f"{', '.join(f'{d:+.2f}' for d in d_seed)}), " + ("above" if beats_u2 else "below")
             + " the 0.5-point margin; one test image is 0.19 points.")
if act:
    a, p2 = act["SMOL-A"], act["PACT 2-bit"]
    notes.append(f"**SMOL-A against PACT** (Table 5.5: SMOL-A 1.8 bits per activation at 90.3 % against PACT 2 bits "
                 f"at 89.2 %): our single SMOL-A run has {a['bits per activation']:.2f} bits per activation and "
                 f"{100 * a['err_after']:.1f} % error after fine-tuning, against {100 * p2['err_after']:.1f} % for "
                 "PACT at 2 bits" + (" (worse)." if a["err_after"] > p2["err_after"] else " (no worse)."))
if as_good:
    notes.append(f"**SMOL-L against a cheap baseline.** The one-shot sensitivity allocation matched or beat SMOL-L "
                 f"after fine-tuning in {len(as_good)} of {len(layer_rows)} rows of section 5 (one seed).")
display(Markdown("\n".join(f"* {n}" for n in notes)))

# %% [markdown]
# ## At the thesis's scale
#
# Which numbers to expect from `full` scale, and which not: the thesis's claims that this chapter could only
# approximate are the ones that depend on the network having little slack, namely SMOL staying ahead of uniform
# quantization *after* training, and the layer pattern of Figure 5.6. A digits MLP trained for a few dozen epochs
# is the wrong place to test either; the thesis's CIFAR-10 protocol is the right one.
#
# At `SCALE = "full"` this notebook does not train section 4's, SMOL-L's and the budget split's networks itself:
# they are the runs of a resumable sweep (`effcourse/smol/sweep.py`), each a ResNet-20
# (`effcourse.core.models.ResNet20`) on CIFAR-10, checkpointed every epoch so that a killed run resumes where it
# stopped. With CIFAR-10's python batches under `$EFFCOURSE_DATA/cifar10`:
#
# ```
# python -m effcourse.sweep plan 07-smol                 # the runs and their estimated GPU-hours
# python -m effcourse.sweep run 07-smol --out results    # every local GPU; --engine ray for a cluster
# EFFCOURSE_RESULTS=results EFFCOURSE_SCALE=full jupyter nbconvert --execute smol.ipynb
# ```
#
# The protocol is the thesis's (5.3.3): 350 epochs of precision training and 300 of fine-tuning, SGD with momentum
# 0.9 from learning rate 0.1 divided by 10 (assumed) at epochs 250, 500 and 600, batch 128, weight decay
# $10^{-4}$, crops and flips, Adam at $10^{-3}$ on $s$, $p_\text{init} = 8$, BatchNorm and 1x1 shortcuts in full
# precision, $\lambda \in \{5, 7, 10\} \cdot 10^{-7}$ (quoted as $\lambda d$ with $d = 268{,}336$ quantized
# weights). The runs, on 3 experiment seeds: SMOL with ZPA and the shuffle control at each $\lambda$, the uniform
# 1-, 2- and 3-bit baselines with the same budget, SMOL-L against the sensitivity allocation at
# $\lambda = 10^{-6}$ (first seed), and Figure 5.7's split at $\lambda = 7 \cdot 10^{-7}$ with 50, 100, ..., 600
# of the 650 epochs in precision training (first seed). The sections above then read these runs, and the cell
# below states the thesis's numbers as claims. The estimate counts FLOPs on one H100-class GPU; ResNet-20's small
# convolutions are bound by memory and kernel launches rather than FLOPs, so take it as a lower bound and multiply
# the epoch count by your GPU's seconds per epoch for the wall time.

# %%
from effcourse.sweep import Sweep

full_sweep = Sweep("07-smol")
n_epochs = sum(smol_sweep.epochs(spec, full_sweep.cfg) for spec in full_sweep.specs)
display(Markdown(f"`sweep plan 07-smol`: {len(full_sweep.specs)} runs, {n_epochs:,} ResNet-20 epochs on CIFAR-10, "
                 f"about {full_sweep.gpu_hours():.1f} GPU-hours by FLOP count on one H100-class GPU."))

# %% [markdown]
# Thesis Table 5.1 (ResNet-20, CIFAR-10, full-precision activations), to compare against:
#
# | method | granularity | bpp (ratio) | test acc % |
# |---|---|---|---|
# | BSQ-FP / LQ-FP | — | 32 (1.0) | 92.6 / 92.1 |
# | LQ-Nets, DSQ, SLB | network | 1.0 (32.0) | 90.1, 90.2, 90.6 |
# | LQ-Nets, SLB | network | 2.0 (16.0) | 91.8, 92.0 |
# | LQ-Nets | network | 3.0 (10.7) | 92.0 |
# | BSQ | layer | 2.7 (11.9) | 91.9 |
# | SMOL-L | layer | 2.4 (13.3) | 92.4 |
# | SMOL | parameter | 2.1 (15.2) | 92.5 |
# | SMOL | parameter | 2.5 (12.8) | 92.8 |
# | SMOL | parameter | 2.8 (11.4) | 93.0 |
# | SMOL* | parameter | 1.3 (24.6) / 1.7 (18.8) | 91.5 / 92.6 |
#
# The thesis states that $\lambda = 10^{-6}$ gave 2.1 bpp and $5 \cdot 10^{-7}$ gave 2.8 bpp; we read the 2.5 bpp row
# as $7 \cdot 10^{-7}$. Figure 5.7 (at $7 \cdot 10^{-7}$): the bpp changes a lot while precision training gets fewer
# than about 250 of the 650 epochs and settles near 2.5 bpp beyond. At full scale the claims below compare the
# sweep's mean over seeds with these numbers, within 0.3 bpp and 1 point of accuracy (the thesis reports one run
# per setting, and our scale factor and the assumed decay factor differ from its unstated details).
#
# On ImageNet the thesis reports ResNet-18 SMOL* at 2.3 bpp weights / 4-bit activations with 69.9 % top-1 (FP
# 69.6 %), and ResNet-50 SMOL* at 0.8 bpp with 74.6 % (FP 76.1 %); two compression ratios in its Table 5.3 are
# misprinted (7.0 should be 7.8 for 4.1 bpp, 5.9 is 6.0 for 5.3 bpp). These are not run here.

# %%
if run.scale == "full":  # the thesis's numbers, asserted at full scale only
    from effcourse.smol.config import TABLE_5_1_SMOL

    for lam, thesis_bpp, thesis_acc in TABLE_5_1_SMOL:
        ld = round(lam * n_quant, 6)
        if ld not in cfg.lam_d:
            continue
        acc, bpp = 100 * (1 - sweep.mean("err_after", ld)), sweep.mean("bpp", ld)
        run.claim(f"λ = {lam:g}: SMOL within 0.3 bpp of {thesis_bpp} and 1 point of {thesis_acc} % (mean of {k})",
                  abs(bpp - thesis_bpp) <= 0.3 and acc >= thesis_acc - 1.0, kind="empirical",
                  thesis=f"Table 5.1: {thesis_bpp} bpp, {thesis_acc} %",
                  ours=f"{bpp:.2f} bpp, {acc:.2f} % (tolerance 0.3 bpp, 1 point)", value=acc, min_scale="full")
    fp_acc = 100 * (1 - fp_err)
    run.claim(f"full-precision ResNet-20 within 1 point of 92.1-92.6 % (mean of {k})", fp_acc >= 91.1,
              kind="empirical", thesis="Table 5.1: LQ-FP 92.1 %, BSQ-FP 92.6 %", ours=f"{fp_acc:.2f} %",
              value=fp_acc, min_scale="full")
    late_rows = [r for r in split_rows if r["precision_epochs"] >= 250 / 650 * cfg.split_total]
    late = [r["bpp"] for r in late_rows]
    run.claim("Fig. 5.7: with >= 250 of 650 epochs of precision training, bpp within 0.3 of 2.5",
              bool(late) and max(abs(b - 2.5) for b in late) <= 0.3, kind="empirical",
              thesis="Fig. 5.7 (λ = 7e-7): similar bpp, around 2.5, beyond 250 epochs",
              ours="bpp " + ", ".join(f"{r['bpp']:.2f}" for r in late_rows) + " (tolerance 0.3)", min_scale="full")

# %% [markdown]
# Where this chapter departs from the thesis, listed once as `DEVIATIONS` in `effcourse/smol/config.py`
# (the reproduction report lists the same entries):

# %%
run.deviations_table()

# %% [markdown]
# ## Exercises
#
# Each exercise changes one quantity of SMOL's objective or of its quantizer and asks for the consequence. The
# solutions are short cells on `effcourse.smol` and on the variables computed above; each checks its prediction
# with an assert that holds at every seed.
#
# ```{exercise} Four times the price, one bit less
# :label: ch07-lambda-bit
#
# On the separable quadratic of Section 3, what does quadrupling $\lambda$ do to the optimal precision $p_i^*$ of
# each weight? Derive it from the closed form, then train SMOL at $4\lambda$ on the first three weights (curvatures
# 1, 10 and 100) and compare the learned precisions with your prediction.
# ```
#
# ```{solution-start} ch07-lambda-bit
# :class: dropdown
# ```
#
# $p_i^* = 1 + \tfrac12\log_2\frac{h_i\ln 2}{3\lambda}$ depends on $\lambda$ only through $-\tfrac12\log_2\lambda$,
# so $4\lambda$ removes $\tfrac12\log_2 4 = 1$ bit from every weight, whatever its curvature: the optimal half-width
# $\sigma_i^* = \sqrt{3\lambda/(h_i\ln 2)}$ doubles. (In the same way, ten times the curvature adds
# $\tfrac12\log_2 10$ bits.) The cell checks the closed-form shift to $10^{-12}$, then trains SMOL for 1,000 steps
# with 4 noise samples per step and asks every learned precision to lie within 0.35 bits of $p_i^*(\lambda) - 1$,
# twice the largest miss over ten development seeds. The stiffest weight is left out: under noisy gradients its
# precision settles slowest, and the run is kept to about a second.

# %%
lam4 = 4 * lam_quad
shift = sm.optimal_precision(h, lam_quad) - sm.optimal_precision(h, lam4)
print("closed form, p*(λ) - p*(4λ) for h = 1, 10, 100, 1000:", np.round(shift, 12))
assert np.allclose(shift, 1.0, rtol=0, atol=1e-12), "expected exactly one bit less for every curvature"
quad4 = sm.learn_quadratic_precisions(h[:3], c[:3], lam4, steps=1000, samples=4,
                                      seed=run.seeds(1, offset=101)[0], device=dev)
print("SMOL at 4λ, learned p:", np.round(quad4.p_learned, 3))
print("p*(λ) - 1:            ", np.round(quad.p_star[:3] - 1, 3))
assert np.abs(quad4.p_learned - (quad.p_star[:3] - 1)).max() < 0.35, "expected SMOL within 0.35 bits of p*(λ) - 1"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} What a bit is worth at the optimum
# :label: ch07-price-of-a-bit
#
# At SMOL's optimum on the quadratic ($w = c$ and $\sigma_i = \sigma_i^*$ for the chapter's $\lambda$), take one bit
# away from a weight (its noise half-width doubles) or give it one more (the half-width halves). Predict the change
# of the expected loss, in units of $\lambda$, for each curvature; check it by Monte Carlo; and explain why neither
# move pays.
# ```
#
# ```{solution-start} ch07-price-of-a-bit
# :class: dropdown
# ```
#
# Noise of half-width $\sigma$ adds $h\sigma^2/6$ to the expected loss. Doubling $\sigma_i^*$ adds
# $3h_i\sigma_i^{*2}/6$, and with $\sigma_i^{*2} = 3\lambda/(h_i\ln 2)$ that is $\frac{3}{2\ln 2}\lambda \approx
# 2.16\lambda$ for *every* curvature; halving it saves $\frac34 h_i\sigma_i^{*2}/6 = \frac{3}{8\ln 2}\lambda \approx
# 0.54\lambda$. The penalty charges exactly $\lambda$ per bit, so dropping a bit saves $\lambda$ and costs
# $2.16\lambda$, and adding one costs $\lambda$ and saves $0.54\lambda$. At the optimum every weight's bits are
# priced alike, whatever its curvature: $\lambda$ is the exchange rate between bits and loss that the Lagrangian
# (5.17) sets, and the derivative of $h\sigma^2/6$ with respect to $p$ is exactly $-\lambda$ at $\sigma^*$. The cell
# estimates both changes from $10^5$ uniform draws and checks them within 5 % of $\frac{3}{2\ln 2}$ and
# $\frac{3}{8\ln 2}$.

# %%
sigma_star = torch.tensor(2.0 ** (1 - quad.p_star))  # the optimal half-widths at lam_quad, one per weight
eps = 2 * torch.rand(100_000, len(h), dtype=torch.float64, generator=run.generator_for(302)) - 1
h_t = torch.tensor(h, dtype=torch.float64)
# Monte Carlo of E L(c + k sigma* eps) - L(c), per weight, at half-widths k sigma* (k = 1/2: one bit more)
noise_loss = {k: (0.5 * h_t * (k * sigma_star * eps) ** 2).mean(0) for k in (0.5, 1.0, 2.0)}
cost_minus = (noise_loss[2.0] - noise_loss[1.0]) / lam_quad
gain_plus = (noise_loss[1.0] - noise_loss[0.5]) / lam_quad
print("loss added by one bit fewer, in units of λ:", np.round(cost_minus.numpy(), 3),
      f"(3 / (2 ln 2) = {3 / (2 * math.log(2)):.3f})")
print("loss saved by one bit more, in units of λ: ", np.round(gain_plus.numpy(), 3),
      f"(3 / (8 ln 2) = {3 / (8 * math.log(2)):.3f})")
assert torch.allclose(cost_minus, torch.full_like(cost_minus, 3 / (2 * math.log(2))), rtol=0.05), \
    "expected 3 / (2 ln 2) lambda for every curvature"
assert torch.allclose(gain_plus, torch.full_like(gain_plus, 3 / (8 * math.log(2))), rtol=0.05), \
    "expected 3 / (8 ln 2) lambda for every curvature"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} The training noise is the rounding error
# :label: ch07-noise-is-rounding
#
# SMOL trains each weight under the noise $\sigma(s)\,\epsilon$, $\epsilon \sim \mathcal U(\pm 1)$, and then rounds
# it to the $p$-bit grid with $2^{1-p} = \sigma(s)$. Show that for a weight placed at random in $[-2, 2]$ the
# rounding error has the law of that noise: compare the largest error and the mean squared error of `quantize`
# with the noise's, at $p = 1, \dots, 6$.
# ```
#
# ```{solution-start} ch07-noise-is-rounding
# :class: dropdown
# ```
#
# The $p$-bit grid splits $[-2, 2]$ into cells of width $2^{2-p}$ and the quantizer returns each cell's midpoint,
# so a weight uniform in $[-2, 2]$ is uniform in its cell and its error is uniform on $\pm 2^{1-p}$: the law of
# $\sigma(s)\,\epsilon$, with largest value $2^{1-p}$ and mean square $4^{1-p}/3$. That is why the expected loss
# under SMOL's noise (5.15) is a sensible stand-in for the loss after rounding: for a weight whose place in its
# cell is arbitrary, the two perturbations have the same distribution. A trained weight is not uniform in its
# cell, which is one reason fine-tuning still helps. The cell checks the largest error against $2^{1-p}$ exactly
# and the mean square within 2 % of $4^{1-p}/3$, on $2\cdot 10^5$ draws.

# %%
w_ex = 4 * torch.rand(200_000, dtype=torch.float64, generator=run.generator_for(303)) - 2  # uniform on [-2, 2]
for p in range(1, 7):
    err = w_ex - qz.quantize(w_ex, p)
    half = 2.0 ** (1 - p)  # sigmoid(s) at this precision: the half-width of SMOL's training noise
    print(f"p = {p}: max |error| / 2^(1-p) = {float(err.abs().max()) / half:.4f}, "
          f"mean error^2 / (4^(1-p) / 3) = {float((err ** 2).mean()) / (half ** 2 / 3):.4f}")
    assert float(err.abs().max()) <= half * (1 + 1e-12), "expected no error above 2^(1-p)"
    assert abs(float((err ** 2).mean()) / (half ** 2 / 3) - 1) < 0.02, "expected E error^2 = 4^(1-p) / 3 within 2 %"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Floor, round or ceil
# :label: ch07-rounding-rule
#
# Eq. 5.20 turns a learned real precision into an integer with a floor (the thesis's experiments, and this
# chapter); Algorithm 5 prints a round. For the SMOL network of the histograms in Section 5 (first seed, the
# $\lambda d$ nearest 2 bpp), compute for the floor, the round and the ceiling the bits per parameter and, for every
# weight, the ratio of the grid's largest rounding error $2^{1-p}$ to the half-width $\sigma(s)$ of the noise the
# weight was trained under. Which rule keeps every rounding inside the perturbation the weight tolerates, and what
# does it cost?
# ```
#
# ```{solution-start} ch07-rounding-rule
# :class: dropdown
# ```
#
# With $p_\text{real} = 1 - \log_2\sigma(s)$ the ratio is $2^{1-p}/\sigma(s) = 2^{p_\text{real} - p}$. The floor
# takes $p \le p_\text{real}$, so the ratio lies in $[1, 2)$: the rounding error can reach twice the noise the weight
# was trained to tolerate, and fine-tuning has to absorb the difference. The ceiling takes $p \ge p_\text{real}$,
# ratio in $(\tfrac12, 1]$: every rounding stays inside the learned limit, at the price of one extra bit on every
# weight whose real precision is not an integer, so at most one bit per parameter. The round lies between, with
# ratios in $[2^{-1/2}, 2^{1/2}]$. The cell checks that the floor reproduces the run's bpp exactly, the two ranges,
# and that the ceiling costs between 0 and 1 bit per parameter more than the floor (the library adds $10^{-5}$ bits
# before rounding so that an integer precision maps back to itself; the tolerances allow for it).

# %%
smol_run = sweep.smol[ld2][0]  # the network of the histograms in section 5
bpp_by, ratio_by = {}, {}
for rounding in ("floor", "round", "ceil"):
    ps, ratios = [], []
    for name in smol_run["smol"].names:
        s = smol_run["smol"].parametrization(name).s.detach()
        ps.append(sm.integer_precision(s, rounding))
        ratios.append((2.0 ** (1 - ps[-1].double()) / torch.sigmoid(s.double())).flatten())
    bpp_by[rounding], r = sm.bits_per_parameter(ps), torch.cat(ratios)
    ratio_by[rounding] = (float(r.min()), float(r.max()))
    print(f"{rounding:5s}: {bpp_by[rounding]:.3f} bpp; 2^(1-p) / sigmoid(s) from {ratio_by[rounding][0]:.3f} "
          f"to {ratio_by[rounding][1]:.3f}")
assert math.isclose(bpp_by["floor"], smol_run["bpp"], rel_tol=1e-12), "expected the floor to give the run's bpp"
assert 0.9999 <= ratio_by["floor"][0] and ratio_by["floor"][1] < 2, "expected the floor's ratios in [1, 2)"
assert ratio_by["ceil"][1] <= 1 + 1e-6, "expected the ceiling's ratios at most 1"
assert 0 <= bpp_by["ceil"] - bpp_by["floor"] <= 1, "expected the ceiling to cost 0 to 1 bit per parameter more"

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Claims
#
# Every row below was asserted when this page was built, except rows marked *not asserted* (run at a scale too
# small for the claim) and rows marked *reported* (shown with their outcome, never asserted: they did not hold
# robustly enough over development seeds to be asserted, and the prose above says what was measured). The thesis's numbers come from ResNet-20 on CIFAR-10; ours from the digits MLP above.

# %%
run.claims_table()
