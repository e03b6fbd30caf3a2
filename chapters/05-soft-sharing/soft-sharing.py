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
# # Soft parameter sharing: templates, layer similarity, and networks that fold into loops
#
# A deep network usually owns one weight tensor per layer. Chapter 3 of {cite}`savarese2025thesis` (first
# published as {cite}`savarese2019implicit`) asks what happens when a stack of layers instead draws its weights from
# a small bank of shared *templates*. Each layer keeps only a handful of mixing coefficients; the templates are
# learned jointly with the coefficients. Two things follow. The parameter count no longer grows with depth, and
# the coefficients reveal, after training, which layers compute (almost) the same function. Such layers can be
# merged, and the network becomes a *program*: a few unique layers executed in loops.
#
# The thesis presents this as neural architecture search over a new search space, and this chapter follows that
# thread:
#
# 1. From a discrete choice ("which weight tensor does layer $l$ use?") to a continuous one: eq. 3.11.
# 2. The shared wide residual networks of Tables 3.1 and 3.3, with their parameter counts checked exactly.
# 3. The layer similarity matrix (LSM), Proposition 3.1, and the worked example of eqs. 3.15-3.18 (with an erratum).
# 4. Soft sharing on 8x8 digits: accuracy against parameters, and LSMs as $k$ varies.
# 5. The recurrence regularizer (eq. 3.19), which pushes all layers towards one.
# 6. Folding a trained network into a loop program. The thesis's rounding is not function preserving; a variant
#    that keeps each layer's sign and scale is.
# 7. The synthetic shortest-path task: CNN, soft-shared CNN, and soft-shared CNN with the regularizer.

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
# `Run` fixes the scale, the seed and the device, and records metrics and claims. The configuration
# (`effcourse/soft_sharing/config.py`) says what each scale trains. The data come from the library's one factory:
# scikit-learn's 8x8 digits at `smoke` and `book` scale, CIFAR-10 with its random crops and flips at `full`. The
# experiment drivers live in `effcourse.soft_sharing.experiments` (imported as `ex`), the plots in
# `effcourse.soft_sharing.figures`; this notebook calls them and reads their results. At `full` scale the training
# runs of Sections 4 to 7 come from a sweep run beforehand (see the end of the chapter); each such cell then reads
# the sweep's results (`effcourse.soft_sharing.sweep`) instead of training inline.
#
# Every random stream comes from `SEED`. `run.seeds(n, offset)` hands out the experiment seeds
# $1000 \cdot \text{SEED} + \text{offset} + i$: the digits runs use offset 0 (the regularized runs of Section 5
# start from the same weights as the unregularized ones of the same seed), the shortest-path models offset 100, and
# the shortest-path data and the small numerical checks their own offsets. Another `SEED` is an independent
# replicate of the whole chapter. Only the data split stays fixed, as the thesis's CIFAR train/test split does.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from effcourse import Run
from effcourse.core.data import augmentation, dataset
from effcourse.soft_sharing import (
    FoldedResidualCNN,
    SConv2d,
    SharedResidualCNN,
    TemplateBank,
    f1_score,
    f1_thesis,
    figures,
    group_layers,
    layer_similarity,
    least_squares_rounding,
    mean_offdiagonal,
    program_order,
    reparameterize,
    sample_paths,
    sweep,
)
from effcourse.soft_sharing import experiments as ex

run = Run("05-soft-sharing", scale=SCALE, seed=SEED, device=DEVICE)
cfg, dev = run.cfg, run.device
data = dataset(cfg.dataset, normalize="standard", device=dev)
augment = augmentation(cfg.dataset)
# digits (sweep and fold), digits with the recurrence regularizer, shortest paths
seeds, reg_seeds, path_seeds = run.seeds(cfg.n_seeds), run.seeds(cfg.reg_n_seeds), run.seeds(cfg.path_n_seeds, 100)
run

# %% [markdown]
# ## 1. From choosing a layer to mixing templates
#
# Most architecture search fixes a depth $L$ and chooses, at each position, one block type from a menu (a 3x3
# convolution, a 5x5 one, the identity): that is the *functional* search space of Def. 3.2, with $k^L$
# architectures. The thesis proposes a *topological* space instead (Def. 3.3). The layer functionals
# $h^{(1)}, \dots, h^{(L)}$ are fixed, there are only $k$ weight tensors $W^{(1)}, \dots, W^{(k)}$, and an architecture
# says which tensor each depth uses:
#
# $$
# \mathcal{F}_T = \left\{ (W^{(i)})_{i=1}^k \mapsto h^{(L)}(W^{(\alpha_L)}) \circ \dots \circ h^{(1)}(W^{(\alpha_1)})
#   \;\middle|\; \alpha \in [k]^L \right\}. \tag{3.4}
# $$
#
# If depths $l < l'$ use the same tensor, the computation between them can be run as a loop: the network is
# partly recurrent, and search over $\alpha$ is search over loop structure. The choice is still discrete. Write it
# with one-hot vectors: if $\alpha^{(l)} = e^{(j)}$, then $\sum_i \alpha^{(l)}_i T^{(i)} = T^{(j)}$, so
#
# $$
# \overline{\mathcal{F}}_T = \left\{ (T^{(i)})_{i=1}^k \mapsto h^{(L)}\Big(\sum_{i} \alpha_i^{(L)} T^{(i)}\Big) \circ
#   \dots \circ h^{(1)}\Big(\sum_{i} \alpha_i^{(1)} T^{(i)}\Big) \;\middle|\; \alpha \in (\mathbb{R}^k)^L \right\}
#   \tag{3.6}
# $$
#
# contains $\mathcal{F}_T$ as the points where every $\alpha^{(l)}$ is a standard basis vector (eq. 3.8). Relaxing
# $\alpha^{(l)}$ from the $k$ basis vectors to all of $\mathbb{R}^k$ (Def. 3.6) turns search into ordinary training.
# Every layer's weight becomes a learned mixture of shared templates,
#
# $$
# W^{(l)} = \sum_{i=1}^k \alpha_i^{(l)} T^{(i)}, \tag{3.11}
# $$
#
# and templates $T$ and coefficients $\alpha$ are trained together by SGD. A stack of $L$ convolutions with $C$
# channels and $K \times K$ kernels then has $k C^2 K^2 + kL$ parameters instead of $L C^2 K^2$.
#
# Because convolution is linear in its weight, the same layer can be read as $k$ *template layers* whose outputs are
# mixed (eq. 3.12): $W^{(l)} u = \sum_i \alpha_i^{(l)} (T^{(i)} u)$. `effcourse.soft_sharing` stores a bank's
# templates as one $k \times C_\text{out} \times C_\text{in} \times K \times K$ tensor. An `SConv2d` forms its
# weight with one contraction over the template axis and then runs one convolution; it does not run $k$
# convolutions. The two readings agree:

# %%
# NBVAL_CHECK_OUTPUT
gen = run.generator_for(900)
bank = TemplateBank(4, (8, 8, 3, 3), dtype=torch.float64)
layer = SConv2d(bank, stride=1, padding=1)
x = torch.randn(2, 8, 10, 10, generator=gen, dtype=torch.float64)
template_view = sum(layer.coefficients[i] * torch.nn.functional.conv2d(x, bank.templates[i], padding=1)
                    for i in range(bank.k))
print("eq. 3.12, one conv with sum_i a_i T_i == sum_i a_i conv(x, T_i):",
      bool(torch.allclose(layer(x), template_view, atol=1e-12)))
print("parameters of the bank + one layer:", bank.templates.numel(), "+", layer.coefficients.numel())

# %% [markdown]
# Relaxing a discrete choice into a continuous parameter that is trained with the weights is also how
# {doc}`../06-continuous-sparsification/continuous-sparsification` learns which weights to keep (a sigmoid gate per
# weight, sharpened into a step by a growing temperature) and {doc}`../07-smol/smol` how many bits each weight gets
# (a real-valued precision, floored after training). Here nothing pushes $\alpha$ back to one-hot vectors during
# training; the return to a discrete architecture is the folding of Section 6.
#
# ## 2. Shared wide residual networks
#
# The thesis applies soft sharing to the pre-activation Wide ResNet {cite}`zagoruyko2016wrn` WRN-$L$-$w$ on CIFAR.
# Its convolutions do not all have the same shape, so templates are shared only within groups of same-shaped
# layers. Each of the three stages opens with a block that changes the number of channels (two 3x3 convolutions
# and a 1x1 shortcut); that block keeps its own weights. The remaining $\frac{L-1}{3} - 3 = \frac{L-10}{3}$
# convolutions of the stage form one group with $k$ templates. That gives SWRN-$L$-$w$-$k$; with
# $k = \frac{L-10}{3}$ (six for $L=28$) there is no saving, and the name drops $k$. Per-layer batch normalization is
# kept, and coefficients start as the rows of a random orthogonal matrix, so that the initial LSM of an unreduced
# group is the identity (the authors' code does this; the thesis does not say).
#
# `SWRN` builds these networks; on PyTorch's `meta` device a 118M-parameter model costs no memory. The thesis's
# parameter column, next to ours (in millions; convolutions without bias, batch-norm scales and shifts, the
# classifier and every coefficient counted):

# %%
param_rows = ex.swrn_parameter_rows()
run.table(param_rows, fmt={"ours (M)": lambda n: f"{n / 1e6:.3f}"},
          caption="Parameters in millions: the thesis's Tables 3.1/3.3 and our counts")

# %%
# NBVAL_CHECK_OUTPUT
counts = {r["model"]: r["ours (M)"] for r in param_rows}
print("every printed count is our count truncated:", all(r["truncated ours == thesis"] for r in param_rows))
print("compression WRN 28-10 / SWRN 28-10-1:", round(counts["WRN 28-10"] / counts["SWRN 28-10-1"], 2),
      "(thesis 3.0);  / SWRN 28-10-2:", round(counts["WRN 28-10"] / counts["SWRN 28-10-2"], 2), "(thesis 2.1)")
print("SWRN 28-10 (k = 6) has", counts["SWRN 28-10"] - counts["WRN 28-10"],
      "more parameters than WRN 28-10: 3 groups x 6 layers x 6 coefficients")

# %% [markdown]
# Every printed value is our count cut after its last printed digit: the tables truncate instead of rounding.
# The compression ratios 3.0 and 2.1 come out as 2.97 and 2.13. The accuracy side of these rows (Table 3.1:
# SWRN 28-10-1 at 4.01 % test error against WRN 28-10 at 4.00 %, with a third of the parameters; SWRN 28-18-2 at
# 3.43 %) needs 200 CIFAR epochs per run and is the `full` configuration of this chapter. The thesis's headline
# relative improvements, recomputed from its own tables:

# %%
# NBVAL_CHECK_OUTPUT
print(f"CIFAR-10: WRN 28-10 4.00 % -> SWRN 28-10 3.74 %: {(4.00 - 3.74) / 4.00:.2%} lower relative error (text: 6.5 %)")
print(f"CIFAR-100: 19.25 % -> 18.78 %: {(19.25 - 18.78) / 19.25:.2%} lower relative error (text: 2.5 %)")
run.claim("SWRN parameter counts match Tables 3.1/3.3", all(r["truncated ours == thesis"] for r in param_rows),
          kind="math", thesis="12, 17.1, 36.4, 33.5, 71.4, 55, 118, 2.7, 6.1 M", ours="all 10 rows equal after truncation")

# %% [markdown]
# ## 3. The layer similarity matrix and Proposition 3.1
#
# If $\alpha^{(l)} = \alpha^{(l')}$, layers $l$ and $l'$ compute the same function. With batch normalization after a
# convolution, $\alpha^{(l)} = c\,\alpha^{(l')}$ for $c > 0$ is just as good, since the normalization removes the
# scale. The thesis therefore measures similarity on the coefficients with a scale-invariant score, the absolute
# cosine:
#
# $$
# S_{l,l'} = \frac{|\langle \alpha^{(l)}, \alpha^{(l')} \rangle|}{\|\alpha^{(l)}\|\, \|\alpha^{(l')}\|}. \tag{3.13}
# $$
#
# The $L \times L$ matrix $S$ is the layer similarity matrix. A run of entries $S_{l+p,\,l} \approx 1$ means a loop
# of period $p$.
#
# To turn a trained model back into a member of $\mathcal{F}_T$, the coefficients must become one-hot. Rounding
# them directly would change the network. The thesis instead uses a reparameterization that leaves every effective
# weight unchanged. Stack the coefficients as $\alpha \in \mathbb{R}^{k \times L}$ (column $l$ is $\alpha^{(l)}$) and
# the flattened templates as $T \in \mathbb{R}^{k \times d}$. The effective weights are the rows of $\alpha^\top T$,
# and for any invertible $B \in \mathbb{R}^{k \times k}$
#
# $$
# T' = BT, \qquad \alpha' = (B^\top)^{-1} \alpha \quad\Longrightarrow\quad
#   \alpha'^\top T' = \alpha^\top B^{-1} B\, T = \alpha^\top T. \tag{3.14}
# $$
#
# The rounding procedure built on it: group similar layers ($g_l$ is the group of layer $l$, $n$ groups), set
# $\alpha'^{(l)} = e^{(g_l)}$, fit $B^\top = \alpha\alpha'^\top(\alpha'\alpha'^\top)^{-1}$ by least squares, and keep
# $T' = BT$ ($n$ templates). The worked example has $L = 5$, $k = 4$, where layer 3 is $-1.5\times$ layer 1 and
# layer 4 is $2\times$ layer 2:

# %%
# NBVAL_CHECK_OUTPUT
alpha_ex = torch.tensor([[0.8, 0.1, -1.2, 0.2, -0.4],
                         [-0.2, 0.6, 0.3, 1.2, -0.3],
                         [0.6, -0.2, -0.9, -0.4, 0.7],
                         [0.2, 1.2, -0.3, 2.4, -0.1]], dtype=torch.float64)
S_ex = layer_similarity(alpha_ex)
print("LSM (eq. 3.16), 4 decimals:\n", np.array2string(S_ex.numpy(), precision=4, suppress_small=True))
groups_ex = group_layers(S_ex, 0.99)
onehot_ex, B_ex = least_squares_rounding(alpha_ex, groups_ex)
print("groups:", program_order(groups_ex), " alpha' =\n", onehot_ex.int().numpy())
print("B (eq. 3.18) =\n", np.array2string(B_ex.numpy(), precision=2, suppress_small=True))
T_ex = torch.randn(4, 50, generator=run.generator_for(901), dtype=torch.float64)
naive_w = (B_ex @ T_ex)[groups_ex]
exact_w = alpha_ex.T @ T_ex
print("per-layer relative weight error of the least-squares rounding:",
      np.round(((naive_w - exact_w).norm(dim=1) / exact_w.norm(dim=1)).numpy(), 3))
B_rand = torch.randn(4, 4, generator=run.generator_for(902), dtype=torch.float64)
a2, t2 = reparameterize(alpha_ex, T_ex, B_rand)
# rounding floor: 64 eps x cond(B) x the size of the weights (a random B can be badly conditioned)
floor = 64 * torch.finfo(torch.float64).eps * float(torch.linalg.cond(B_rand)) * float(exact_w.abs().max())
print("Proposition 3.1 with a random invertible B: max |a'^T T' - a^T T| <= 64 eps cond(B) max|W|:",
      bool((a2.T @ t2 - exact_w).abs().max() <= max(floor, 1e-12)))

# %% [markdown]
# :::{admonition} Two corrections to eqs. 3.16 and 3.18
# :class: note
# The printed LSM gives 0.05, 0.15 and 0.40 for the entries that are 0.0566, 0.1556 and 0.4075: truncated, not
# rounded. The third row of the printed $B$ is $(-0.4, +0.3, 0.7, -0.1)$. It must equal $\alpha^{(5)}$, the only
# member of group 3, which is $(-0.4, -0.3, 0.7, -0.1)$: the sign of $B_{3,2}$ is a misprint.
# :::
#
# The last check matters more. The thesis calls the rounding function preserving, and for this very example it is
# not. Least squares fits a group's columns by their **mean**. Layers 1 and 3 point the same way (up to sign) but
# differ in length and sign, so their mean, $-0.2\,\alpha^{(1)}$, matches neither: relative errors of 1.25 and 0.83.
# Proposition 3.1 itself is exact, but it needs an invertible $k \times k$ matrix $B$. With $n < k$ groups, $B$ is
# $n \times k$ and the step is a projection. Section 6 builds a rounding that keeps each layer's sign and scale,
# and shows what the difference costs in a trained network.
#
# One more caveat concerns the scale invariance that motivates $|\cos|$. It holds when a normalization layer
# follows the convolution. In a pre-activation residual block the second convolution's output is added to the
# residual stream without normalization, so there $W \mapsto cW$ changes the function. A fold that keeps each
# layer's scale is exact in both cases.

# %% [markdown]
# ## 4. Soft sharing on digits
#
# The CIFAR experiments are out of reach on two CPU cores, so we keep their structure and shrink the data. The
# model is a residual CNN for scikit-learn's 8x8 digits (a fixed 70/30 split): a 3x3 stem convolution to
# $C = 16$ channels, then $L = 8$ pre-activation residual layers $x + \mathrm{conv}(\mathrm{relu}(\mathrm{bn}(x)))$,
# batch norm, ReLU, global pooling and a linear classifier. The 8 convolutions are either independent (the baseline)
# or one sharing group with $k \in \{8, 4, 2, 1\}$ templates. Training follows the thesis's CIFAR recipe, scaled to
# fewer epochs: SGD with Nesterov momentum 0.9, learning rate 0.1 divided by 5 at 30, 60 and 80 % of training,
# batch 64, weight decay $5 \cdot 10^{-4}$ on everything except the coefficients. At `full` scale the same
# functions train WRN 28-10 and SWRN 28-10-$k$ on CIFAR-10 in the chapter's sweep, and this cell reads the results.

# %%
if run.scale == "full":  # WRN 28-10 and SWRN 28-10-k, trained by the sweep; the first seed's weights are loaded
    models, acc = sweep.collect_template_sweep(run.sweep_results(), cfg, seeds, data.num_classes)
else:
    models, acc = ex.template_sweep(cfg, data, seeds, augment, dev)
s0 = seeds[0]
variants = [None] + cfg.sweep_ks
lsms = {k: ex.group_lsm(models[k, s0]) for k in variants}
lsm0 = ex.initial_lsms(cfg, variants, s0, data.num_classes)  # the same models before training
stack = {k: ex.stack_parameters(models[k, s0]) for k in variants}
med_acc = {k: float(np.median([acc[k, s] for s in seeds if (k, s) in acc])) for k in variants}
for k in variants:
    run.metric(f"digits/lsm_offdiag/k={k}", mean_offdiagonal(lsms[k]))
run.table(ex.sweep_rows(models, acc, seeds, initial=lsm0),
          fmt={"parameters": ",", "mean off-diagonal LSM": ".3f", "at initialization": ".3f"},
          caption="Soft sharing on digits: parameters, share of the unshared stack, accuracy, layer similarity "
                  "after training and at initialization (first seed)")

# %% mystnb={"image": {"alt": "Five grey-scale 8 by 8 layer similarity matrices, white for 1. Unshared layers are dark off the diagonal (nearly orthogonal); with 8 templates the matrix is still mostly dark, with 4 and 2 templates increasingly light, and with 1 template entirely white: every pair of layers is the same up to scale."}, "figure": {"caption": "Layer similarity matrices of the eight stacked layers of the digits network (first seed), unshared and with k = 8, 4, 2 and 1 templates: the fewer the templates, the more alike the layers.", "name": "fig-soft-sharing-lsm"}}
fig = figures.plot_lsms({"unshared" if k is None else f"k = {k}": s for k, s in lsms.items()},
                        "Layer similarity matrices (white = 1), first seed", colorbar=True)
plt.show()

# %% [markdown]
# {numref}`Figure %s <fig-soft-sharing-lsm>` shows the LSMs of the 8 stacked layers. Without sharing, similarity is
# $|\cos|$ between flattened weights (Fig. 3.2, left, does the same); with sharing, eq. 3.13 on the coefficients.
#
# Digits are easy, so the question is whether a shared stack with a fraction of the parameters stays close to the
# unshared network: the regime of the thesis's SWRN 28-10-1 row. Our numbers cannot test the thesis's stronger
# result that sharing *improves* accuracy (6.5 % lower relative error on CIFAR-10), because digits leave no room
# to improve. The claims compare medians over the seeds, with a tolerance of 1.5 points (8 of the 540 test
# images), fixed on development seeds before the fresh-seed test. Only $k = 2$ (a quarter of the stack) is
# asserted. A single template costs more: in development its median gap to the unshared network came close to
# the tolerance on some seeds, so its row is *reported*, with this run's gap, and not asserted. That goes against
# the thesis's SWRN 28-10-1 row, where one template matched the unshared network.
#
# The ordering of the LSMs needs care. Fewer templates force the coefficients into a lower-dimensional space:
# with $k = 1$ every pair of layers has similarity exactly 1, and with $k = L = 8$ the orthogonal initialization
# starts from the identity. The column "at initialization" shows that the ordering by $k$ is already there before
# any training; it is a property of the construction, not something training discovers. We therefore check the
# two identities as mathematics and only *report* the ordering after training, next to its value at
# initialization. The unshared network's layers are nearly orthogonal as flat vectors, as in the thesis's
# Fig. 3.2.

# %%
base_acc = med_acc[None]
for k in cfg.claim_ks:  # asserted for asserted_ks; the others are reported (see the text below)
    run.claim(f"median over {len(seeds)} seeds: k = {k} templates stay within 1.5 points of the unshared net "
              "with <= 30% of its stack parameters",
              med_acc[k] >= base_acc - 1.5 and stack[k] <= 0.30 * stack[None], kind="empirical",
              thesis="SWRN 28-10-1: 4.01 % vs 4.00 % error with 1/3 of the parameters (Table 3.1)",
              ours=f"{med_acc[k]:.2f} % vs {base_acc:.2f} % (gap {med_acc[k] - base_acc:+.2f}), stack "
                   f"{stack[k] / stack[None]:.0%} (medians of {len(seeds)} seeds)",
              value=med_acc[k] - base_acc, min_scale="book", assert_claim=k in cfg.asserted_ks)
k_max, tol32 = max(cfg.sweep_ks), 64 * torch.finfo(torch.float32).eps  # float32 rounding floor of a cosine
err_one = float((lsms[1] - 1).abs().max()) if 1 in lsms else 0.0
err_eye = float((lsm0[k_max] - torch.eye(len(lsm0[k_max]))).abs().max())
run.claim(f"by construction: k = 1 gives an all-ones LSM, k = {k_max} = L starts at the identity",
          max(err_one, err_eye) <= tol32, kind="math", thesis="fewer templates, more similar layers (Sec. 3.4.2)",
          ours=f"max deviation {err_one:.1e} (k = 1, trained) and {err_eye:.1e} (k = {k_max}, initial); "
               f"tolerance {tol32:.0e}")
order = [None] + sorted(cfg.sweep_ks, reverse=True)  # from dissimilar to similar
offd, offd0 = ({k: mean_offdiagonal(m[k]) for k in order} for m in (lsms, lsm0))
run.claim("mean off-diagonal LSM decreases as k grows, after training as at initialization",
          all(d[a] < d[b] for d in (offd, offd0) for a, b in zip(order[1:], order[2:])), kind="empirical",
          thesis="fewer templates, more similar layers; unshared layers dissimilar (Fig. 3.2, Sec. 3.4.2)",
          ours=", ".join(f"{'unshared' if k is None else f'k={k}'}: {offd0[k]:.2f} -> {offd[k]:.2f}" for k in order)
          + " (initial -> trained, first seed)", value=offd[2] if 2 in offd else None, assert_claim=False)

# %% [markdown]
# ## 5. The recurrence regularizer
#
# Similarity can also be asked for. Eq. 3.19 adds a term that rewards the sum of the LSM's entries,
#
# $$
# \mathcal{L}_R(\alpha, \theta) = \mathcal{L}(\alpha, \theta) - \lambda \sum_{l, l'} S_{l,l'}(\alpha). \tag{3.19}
# $$
#
# (The text says "penalize"; the minus sign makes it a reward, which is what the thesis means: as $\lambda$ grows
# every $S_{l,l'}$ goes to 1 and the network collapses into one layer with a self-loop.) The sum runs over all
# $L^2$ entries, so the useful $\lambda$ depends on $L$. We train the $k = 8$ network, which has no pressure to share,
# with $\lambda = 0.01$ (the thesis's value for its synthetic task) for as many epochs as the unregularized models:

# %% mystnb={"image": {"alt": "Two 8 by 8 layer similarity matrices for 8 templates, first seed: without the regularizer mostly dark off the diagonal; with lambda = 0.01 white wherever two layers became the same up to scale (entirely white when all eight merged)."}}
if run.scale == "full":
    reg_models, reg_acc = sweep.collect_regularized(run.sweep_results(), cfg, reg_seeds, data.num_classes)
else:
    reg_models, reg_acc = ex.regularized_runs(cfg, data, reg_seeds, augment, dev)
reg_lsm = {s: ex.group_lsm(reg_models[s]) for s in reg_seeds}  # reg_seeds[0] == s0: same initial weights
reg_off = np.array([mean_offdiagonal(reg_lsm[s]) for s in reg_seeds])
free_off, reg_med = mean_offdiagonal(lsms[cfg.reg_k]), float(np.median(reg_off))
fig = figures.plot_lsms({f"k = {cfg.reg_k}": lsms[cfg.reg_k],
                         f"k = {cfg.reg_k}, $\\lambda$ = {cfg.reg_lam}": reg_lsm[s0]})
plt.show()
run.metric("digits/reg_lsm_offdiag/median", reg_med)
reg_held = run.claim(
    f"median over {len(reg_seeds)} seeds: lambda_R = {cfg.reg_lam} lifts the k = {cfg.reg_k} net's mean "
    "off-diagonal LSM above 0.9", reg_med > 0.9, kind="empirical",
    thesis="with lambda_R all entries of the LSM converge to 1 (Sec. 3.4.3)",
    ours=f"median {reg_med:.3f}; per seed " + ", ".join(f"{v:.3f}" for v in reg_off)
         + f"; {int((reg_off > 0.9).sum())} of {len(reg_off)} above 0.9 (unregularized, first seed: {free_off:.3f})",
    value=reg_med, min_scale="book")

# %% [markdown]
# The threshold 0.9 sits between the unregularized network and a run whose layers merge (the table shows both),
# and it was fixed before the fresh-seed test. Next to each run we count the groups its layers form at similarity 0.9
# (Section 6's grouping rule): one group means the whole stack is one layer up to scale.

# %%
reg_groups = {s: int(group_layers(reg_lsm[s], 0.9).max()) + 1 for s in reg_seeds}
run.table([{"model": f"k = {cfg.reg_k}, lambda = {cfg.reg_lam}", "seed": s, "mean off-diagonal LSM": v,
            "layer groups at S >= 0.9": reg_groups[s], "test accuracy %": reg_acc[s]} for s, v in zip(reg_seeds, reg_off)]
          + [{"model": f"k = {cfg.reg_k}, no regularizer", "seed": s0, "mean off-diagonal LSM": free_off,
              "layer groups at S >= 0.9": int(group_layers(lsms[cfg.reg_k], 0.9).max()) + 1,
              "test accuracy %": acc[cfg.reg_k, s0]}],
          fmt={"mean off-diagonal LSM": ".3f", "test accuracy %": ".2f"})

# %%
stalled = [(s, v) for s, v in zip(reg_seeds, reg_off) if v <= 0.9]
display(Markdown(
    f"With the regularizer the median run reaches a mean off-diagonal similarity of {reg_med:.3f}, against "
    f"{free_off:.3f} without it, and {len(reg_off) - len(stalled)} of {len(reg_off)} runs end above 0.9. The "
    f"median test accuracy is {np.median(list(reg_acc.values())):.2f} % (without the regularizer, first seed: "
    f"{acc[cfg.reg_k, s0]:.2f} %). "
    + ("No run stalled this time." if not stalled else
       "The regularizer does not merge every run: " + "; ".join(
           f"seed {s} stopped at {v:.3f}, its layers split into {reg_groups[s]} groups" for s, v in stalled) + ".")))

# %% [markdown]
# Why a run can stall: the reward $\lambda \sum S$ is small next to the data loss, and the gradient of each
# $|\cos|$ shrinks like $1/\|\alpha^{(l)}\|$. When the layers first settle into a few tight clusters that the data
# loss keeps apart, the pull between clusters no longer wins, and the step decay of the learning rate then
# freezes the configuration. Which seeds do this is decided by small differences early in training: in
# development the same seed could land on either side with one or two BLAS threads, which change only the order
# of floating-point sums. That is why the claim is a median over several seeds and not a bound on every seed. A
# network that does merge folds into very few unique layers, and the next section shows how.
#
# ## 6. Folding a network into a program
#
# Suppose layers are grouped by their LSM: layer $l$ joins the first group whose first member has
# $S \ge \tau$, else it opens a new group. (The thesis leaves the grouping rule open. Comparing with the group's
# first member, not with any member, keeps a chain of pairwise-similar layers from merging two dissimilar ones.)
# Each group then becomes **one unique layer**, and the network becomes a program that calls these layers in
# order: `[1, 2, 3, 4, 3, 4]` means a loop over layers 3 and 4. Two ways to do it:
#
# * **naive** (the thesis's least-squares rounding): unique layer $g$ gets weight $\sum_i B_{g,i} T^{(i)}$, the
#   group's mean coefficient vector, and every call uses it unchanged;
# * **scaled** (ours): unique layer $g$ gets $\sum_i U_{i,g} T^{(i)}$, where $U_{:,g}$ is the unit vector that best
#   fits the group's coefficient columns (their leading singular vector). Call $l$ multiplies the output by its own
#   signed scale $c_l = \langle \alpha^{(l)}, U_{:,g_l} \rangle$ and keeps its own batch norm. Columns that are
#   parallel, in either direction, fold exactly, and the cost is one scalar per call.
#
# After either fold the batch-norm statistics are re-estimated on the training inputs: the folded layers' outputs
# differ slightly, and stale statistics amplify that. We check exactness first. A stack whose coefficients are tied
# up to sign and scale (layer 5 $= -1.5\times$ layer 3, layer 6 $= 2\times$ layer 4, with tied batch norms) folds
# into the program `[1, 2, 3, 4, 3, 4]` with the same outputs:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(run.seeds(1, offset=903)[0])
tied = SharedResidualCNN(6, 6, 4).double()
with torch.no_grad():
    tied.layers[4].conv.coefficients.copy_(-1.5 * tied.layers[2].conv.coefficients)
    tied.layers[5].conv.coefficients.copy_(2.0 * tied.layers[3].conv.coefficients)
    for a, b in ((2, 4), (3, 5)):
        tied.layers[b].bn.load_state_dict(tied.layers[a].bn.state_dict())
tied.eval()
tied_groups = group_layers(layer_similarity(tied.alpha().detach()), 0.999)
program = FoldedResidualCNN(tied, tied_groups, "scaled").eval()
naive_program = FoldedResidualCNN(tied, tied_groups, "naive").eval()
xt = torch.randn(4, 1, 8, 8, generator=run.generator_for(904), dtype=torch.float64)
with torch.no_grad():
    out = tied(xt)
    err_scaled, err_naive = ((p(xt) - out).abs().max().item() for p in (program, naive_program))
tol = 1e-10 * max(1.0, out.abs().max().item())  # float64: rounding is ~1e-15 of the outputs' size
print("program:", program_order(program.order), "unique layers:", program.unique_layers)
print("scaled fold == original (max error <= 1e-10 x output size):", err_scaled <= tol)
print("naive fold == original  (max error <= 1e-10 x output size):", err_naive <= tol)
print("signed scales:", np.round(program.scale.detach().numpy(), 3))
_ = run.claim("folding a stack tied up to sign and scale: the scaled fold is exact, the naive fold is not",
              err_scaled <= tol < err_naive, kind="math", thesis="the rounding preserves the function (after Prop. 3.1)",
              ours=f"max output error scaled {err_scaled:.1e}, naive {err_naive:.1e} (tolerance {tol:.0e})")

# %% [markdown]
# Now the trained networks. We fold the $k = 2$ models of Section 4 at $\tau = 0.95$ and evaluate every variant on
# the test set (the threshold is fixed in the configuration, not tuned on these numbers).

# %%
if run.scale == "full":  # each seed's SWRN 28-10-4 was folded by its sweep run
    fold_rows, drops_scaled, drops_naive = sweep.collect_fold(run.sweep_results(), cfg, seeds)
else:
    fold_rows, drops_scaled, drops_naive = ex.fold_experiment(models, acc, cfg, data, seeds)
med_scaled = float(np.median(drops_scaled))
run.metric("digits/fold_drop_scaled/median", med_scaled)
run.claim(f"median over {len(seeds)} seeds: the sign/scale-aware fold loses <= 1 point", med_scaled <= 1.0,
          kind="empirical",
          thesis="folding SWRN 28-10-4: +0.02 % error; SWRN 40-8-8 at similarity ~0.8: < 0.3 % (Sec. 3.4.2)",
          ours=f"median drop {med_scaled:.2f} points (per seed " + ", ".join(f"{d:.2f}" for d in drops_scaled) + ")",
          value=med_scaled, min_scale="book")
naive_collapsed = run.claim(
    f"the thesis's least-squares fold loses > 20 points on at least one of {len(seeds)} seeds",
    max(drops_naive) > 20, kind="empirical", thesis="the rounding preserves the network's function (after Prop. 3.1)",
    ours="drops " + ", ".join(f"{d:.1f}" for d in drops_naive) + " points", value=max(drops_naive),
    assert_claim=False)
run.table(fold_rows, floatfmt=".2f", caption=f"Folding the k = {cfg.fold_k} networks at tau = {cfg.fold_tau}: "
          "test accuracy of every variant")

# %% [markdown]
# For the first seed, the program view of Section 6 (`FoldedResidualCNN`, one weight per unique layer and one
# scale per call) and the in-place fold of the template bank (`fold_network`) compute the same function before
# recalibration; the row below counts what the program stores:

# %%
summary = ex.program_summary(models[cfg.fold_k, s0], cfg.fold_tau, data.x_test)
run.table([summary], caption="The first seed as a program") if summary else None

# %% [markdown]
# The naive rounding collapses to near chance whenever a group holds layers of opposite sign: their mean cancels.
# It survives on seeds whose groups happen to hold same-signed columns of similar length. Which case a seed falls
# in is close to a coin toss, so the row on the naive fold is *reported*, not asserted. The scaled fold's
# remaining error is the part of each coefficient vector orthogonal to its group's direction, and batch-norm
# recalibration absorbs much of it (compare the stale columns). In this run:

# %%
display(Markdown(
    f"The naive fold lost more than 20 points on {int((np.array(drops_naive) > 20).sum())} of {len(seeds)} seeds "
    "(drops " + ", ".join(f"{d:.1f}" for d in drops_naive) + " points) and the scaled fold lost "
    + ", ".join(f"{d:.2f}" for d in drops_scaled) + f" points (median {med_scaled:.2f}). The scaled fold lost less "
    f"than the naive one on {sum(a < b for a, b in zip(drops_scaled, drops_naive))} of {len(seeds)} seeds."))

# %% [markdown]
#
# Two caveats for reading the thesis's folding results. First, folding saves parameters only against the model
# it replaces. A $k = 2$ network folded into 4 or 5 unique layers has *more* weights than its 2 templates, though
# fewer than 8 independent layers. It pays off when $n < k$, as in the thesis's SWRN 40-8-8 (8 templates, folded
# into 4 unique layers per stage). Second, the thesis reports folds at similarity "close to 0.8" costing under
# 0.3 % error, without saying how the tied weights were formed or whether batch norm was recalibrated. With the
# least-squares rounding as printed, whether our digits networks survive even $\tau = 0.95$ depends on the seed.

# %% [markdown]
# ## 7. An algorithmic task: shortest paths
#
# Does a network that can learn loops do better on a task with a natural loop? The thesis builds one. A grid holds
# two query cells and random obstacles (each other cell with probability 0.1), and the target marks every cell on
# *at least one* shortest path between the queries. A curriculum of five phases raises the maximum query distance
# 2, 4, 6, 8, 10. Breadth-first search is the natural algorithm: one step of wavefront expansion per layer.
#
# Two details are open in the thesis, and we fix them as follows. Its data section counts distance "including
# diagonal movements", while the caption of its Fig. 3.8 speaks of Manhattan distance. We use 8-connected moves for
# both sampling and labels. The first query is uniform over the grid, the second uniform over the free cells at
# distance 1 to $d_\text{max}$ from it, and both query cells count as on the path. The F1 score of eq. 3.20 as
# printed,
# $\sum_i \mathbb{1}\{y_i = \hat y_i = 1\} / \sum_i (\mathbb{1}\{y_i = 1\} + \mathbb{1}\{\hat y_i = 1\})$, is at
# most 0.5: the numerator misses its factor 2. We use $F_1 = 2\,TP / (2\,TP + FP + FN)$.

# %%
# NBVAL_CHECK_OUTPUT
xs, ys = sample_paths(3, 12, 6, 0.1, 8, generator=run.generator_for(905))
print("positives per grid:", ys.flatten(1).sum(1).int().tolist())
print("F1 of a perfect prediction, eq. 3.20 as printed vs with the factor 2:",
      f1_thesis(ys, ys), f1_score(ys, ys))

# %% mystnb={"image": {"alt": "Three 12 by 12 example grids, each with two blue query cells, scattered red obstacles and a band of yellow cells that lie on at least one shortest path between the queries."}}
fig = figures.plot_path_grids(xs, ys)
plt.show()

# %% [markdown]
# The thesis's models: a 1x1 convolution from 2 to $C$ channels; $L$ residual layers
# $x + \mathrm{relu}(\mathrm{bn}(\mathrm{conv}_{3\times3}(x)))$; a 1x1 convolution to one logit per cell. The
# CNN has independent layers. The SCNN soft-shares them with $k = L$ templates, so there is no parameter saving;
# any difference comes from the parameterization. SCNN+R adds the recurrence regularizer with $\lambda_R = 0.01$.
# All use Adam at a fixed learning rate of 0.01 and no weight decay. Our scale: a 16x16 grid, $C = 16$, $L = 10$,
# 1,000 training grids and 5 epochs per phase (the thesis: 32x32, $C = 32$, $L = 20$, 5,000 grids, 50 epochs). F1
# is measured on held-out grids of the current phase at the end of each phase.

# %% mystnb={"image": {"alt": "Left: test F1 at the end of each curriculum phase (maximum query distance 2 to 10) for the CNN, the soft-shared SCNN and the SCNN with the recurrence regularizer, mean of the seeds. Centre and right: layer similarity matrices of the SCNN and of SCNN+R for the first seed, white where two layers are the same up to scale."}}
if run.scale == "full":
    f1, path_lsm = sweep.collect_paths(run.sweep_results(), cfg, path_seeds)
else:
    f1, path_lsm = ex.path_experiment(cfg, path_seeds, run.generator_for(200), dev)
fig = figures.plot_path_results(f1, {f"LSM, {n}": path_lsm[n, path_seeds[0]] for n in ("SCNN", "SCNN+R")},
                                cfg.path_phases, path_seeds)
plt.show()
path_reg_off = [mean_offdiagonal(path_lsm["SCNN+R", s]) for s in path_seeds]
path_free_off = [mean_offdiagonal(path_lsm["SCNN", s]) for s in path_seeds]
for name in ex.path_variants(cfg):
    run.metric(f"paths/f1_last/{name}", float(np.mean([f1[name, s] for s in path_seeds], axis=0)[-1]))
run.claim(f"worst of {len(path_seeds)} seeds: on shortest paths lambda_R = {cfg.path_lam} lifts the mean "
          "off-diagonal LSM above 0.9", min(path_reg_off) > 0.9, kind="empirical",
          thesis="all entries in the LSM quickly converge to 1 (Sec. 3.4.3)",
          ours=f"mean off-diagonal {min(path_reg_off):.3f}-{max(path_reg_off):.3f} (SCNN without it: "
               f"{np.mean(path_free_off):.3f})", value=min(path_reg_off), min_scale="book")
run.table(ex.path_f1_rows(f1, cfg.path_phases, path_seeds),
          caption="Test F1 at the end of each phase, mean over seeds (min-max in parentheses)")

# %% [markdown]
# What this run says about the three claims of Sec. 3.4.3 (thesis: curves in Fig. 3.9, one run, no numbers):

# %%
run.table(ex.fig_3_9_rows(f1, path_seeds))

# %% [markdown]
# These differences are not asserted as claims. They come from a few seeds of a scaled-down run, and the thesis
# shows one training curve per model. Note that the thesis's curves are over training epochs and ours are
# end-of-phase scores, so a faster start inside phase 1 would not show here. What this run measured:

# %%
diffs = ex.fig_3_9_differences(f1, path_seeds)
d1, d2, d3 = diffs.values()  # SCNN - CNN later; SCNN+R - SCNN phase 1; SCNN - SCNN+R later
n_p, spread = len(path_seeds), float(np.ptp([np.mean(f1["CNN", s][1:]) for s in path_seeds]))
display(Markdown(
    f"* Over phases 2 on, the SCNN scores higher than the plain CNN on {int((d1 > 0).sum())} of {n_p} seeds "
    f"(mean difference {d1.mean():+.3f} F1), next to a seed-to-seed spread of the CNN itself of {spread:.3f}.\n"
    f"* In phase 1 the regularized SCNN+R scores higher than the SCNN on {int((d2 > 0).sum())} of {n_p} seeds "
    f"(mean difference {d2.mean():+.3f}).\n"
    f"* Over phases 2 on, the SCNN+R scores lower than the SCNN on {int((d3 > 0).sum())} of {n_p} seeds "
    f"(mean difference {-d3.mean():+.3f})."))

# %% [markdown]
# The thesis's reading of the last point: a network forced to apply (nearly) one layer again and again has a
# harder time when the distribution shifts.
#
# ## What did not reproduce
#
# Four statements of the thesis are wrong as printed, whatever the seed. What we found, and what this chapter does
# instead:
#
# | thesis | this book |
# |---|---|
# | the least-squares rounding after Prop. 3.1 "preserves the network functionality" | false when a group holds parallel columns of different length or sign, including in the worked example itself (errors 1.25, 0.5, 0.83, 0.25 for its layers 1-4) and in the tied stack of Section 6. We fold with a per-call sign and scale instead (Section 6). |
# | eq. 3.18, $B_{3,2} = +0.3$ | $-0.3$ (row 3 must equal $\alpha^{(5)}$) |
# | eq. 3.20 (F1) | missing factor 2; we use $2TP/(2TP+FP+FN)$ |
# | scale invariance of layers followed by BN | does not hold for the second convolution of a pre-activation block, whose output is not normalized; the scaled fold does not need it |
#
# The accuracy side of the CIFAR tables is not tested at `book` scale: digits leave no room for sharing to
# *improve* accuracy, so only "stays close to the unshared network with a fraction of its stack" is asserted
# there. The statements that depend on training, as this run measured them:

# %%
n_f, n_r = len(seeds), len(reg_off)
display(Markdown("\n".join("* " + note for note in [
    f"The thesis's least-squares rounding on the trained k = {cfg.fold_k} digits networks: it lost more than 20 "
    f"points on {int((np.array(drops_naive) > 20).sum())} of {n_f} seeds (drops " + ", ".join(
        f"{d:.1f}" for d in drops_naive) + f"); the scaled fold's median drop is {np.median(drops_scaled):.2f}.",
    f"The recurrence regularizer on digits lifted the mean off-diagonal LSM above 0.9 on {int((reg_off > 0.9).sum())}"
    f" of {n_r} seeds (median {reg_med:.3f}); a run that stalls keeps its layers in several groups (Section 5).",
    f"SCNN > CNN on shortest paths (Fig. 3.9): higher F1 over phases 2 on for {int((d1 > 0).sum())} of {n_p} seeds, "
    f"mean difference {d1.mean():+.3f} F1 next to a CNN seed spread of {spread:.3f}; not asserted.",
    f"SCNN+R learns faster in phase 1 (Fig. 3.9): its end-of-phase-1 F1 beats the SCNN's on {int((d2 > 0).sum())} "
    f"of {n_p} seeds (mean difference {d2.mean():+.3f}); not asserted.",
])))

# %% [markdown]
#
# ## At the thesis's scale
#
# The `full` configuration is the thesis's setting (Sec. 3.3.3), and it does not train inside this notebook: its
# runs are independent jobs of a resumable sweep, each checkpointed every epoch, and the notebook reads their
# results. With CIFAR-10 in `$EFFCOURSE_DATA/cifar10` (the python batches), run
#
# ```
# python -m effcourse.sweep run 05-soft-sharing --out results
# EFFCOURSE_RESULTS=results python -m effcourse.book.notebooks execute 05-soft-sharing --scale full
# ```
#
# (`sweep plan` lists the runs, `sweep status` shows what is done; a killed sweep continues where it stopped, and
# `--engine ray` spreads the runs over a cluster). The sweep trains the pre-activation WRN 28-10 and SWRN 28-10-$k$
# for $k \in \{6, 4, 2, 1\}$, each on 5 seeds (the 5 runs that Table 3.1 averages): 200 epochs of
# SGD with Nesterov momentum 0.9, batch 128, learning rate 0.1 divided by 5 at epochs 60, 120 and 160, weight
# decay $5 \cdot 10^{-4}$ except on the coefficients, random crops and flips, and dropout 0.3 for SWRN 28-10-2
# only (Table 3.1's starred row; the other rows are unstarred). SWRN 28-10-6 is trained again with the recurrence
# regularizer ($\lambda = 0.01$, 5 seeds), each seed's SWRN 28-10-4 is folded at $\tau = 0.95$, and Table 3.3's
# rows (WRN 28-10, SWRN 28-10, SWRN 28-10-2) are retrained with cutout of 16x16 pixels on 5 seeds. The
# shortest-path task runs at the thesis's size: 32x32 grids, 5,000 training grids per phase, $C = 32$, $L = 20$, 50
# epochs per phase, 3 seeds per model. The sweep's cost, counted in FLOPs:

# %%
from effcourse.sweep import Sweep

full_sweep = Sweep("05-soft-sharing")
display(Markdown(f"The sweep has {len(full_sweep.specs)} runs and needs about {full_sweep.gpu_hours():.0f} "
                 "GPU-hours on one H100-class GPU at 40 % of its dense bf16 peak (`sweep plan` prints the split "
                 "by experiment; a run of WRN 28-10 is one GPU job)."))

# %% [markdown]
# The numbers to compare with are the thesis's (Table 3.1 without cutout, averages of 5 runs; Table 3.3 with
# cutout):
#
# | model | parameters (M) | CIFAR-10 test error %, Table 3.1 (dropout) | Table 3.3, with cutout |
# |---|---|---|---|
# | WRN 28-10 | 36 | 4.00 (0.0), 3.89 (0.3) | 3.08 |
# | SWRN 28-10-1 | 12 | 4.01 (0.0) | |
# | SWRN 28-10-2 | 17.1 | 3.75 (0.3) | 2.69 |
# | SWRN 28-10 | 36.4 | 3.74 (0.0), 3.88 (0.3) | 2.70 |
# | SWRN 28-14-2 | 33.5 | 3.69 (0.3) | 2.53 |
# | SWRN 28-18-2 | 55 | 3.43 (0.3) | |
# | SWRN 28-4-2 / 28-6-2 | 2.7 / 6.1 | | 3.45 / 3.00 |
#
# At that scale Sections 4 to 7 show the thesis-scale runs, the claim on one template compares SWRN 28-10-1 with
# WRN 28-10 (the thesis: 4.01 % against 4.00 % with a third of the parameters), and the cell below compares the
# mean test error of every trained row of the two tables with the thesis's, asserting agreement within 0.5
# points (about twice the 0.27-point range of the thesis's WRN 28-10 rows in Table 3.1; the thesis gives no
# seed-to-seed spread). At `smoke` and `book` scale it shows nothing.

# %%
if run.scale == "full":
    cutout_seeds = run.seeds(cfg.cutout_n_seeds)
    for experiment, thesis, table, table_seeds in (("sweep", sweep.THESIS_TABLE_3_1, "3.1", seeds),
                                                   ("cutout", sweep.THESIS_TABLE_3_3, "3.3", cutout_seeds)):
        rows_t = sweep.table_rows(run.sweep_results(), cfg, experiment, table_seeds, thesis)
        display(run.table(rows_t, floatfmt=".2f", caption=f"CIFAR-10 test error against Table {table}"))
        for r in (r for r in rows_t if r["thesis %"] is not None):
            run.claim(f"{r['model']} (dropout {r['dropout']:g}{', cutout' if experiment == 'cutout' else ''}): "
                      f"mean test error of {len(table_seeds)} seeds within 0.5 points of Table {table}",
                      abs(r["difference"]) <= 0.5, kind="empirical", thesis=f"{r['thesis %']:.2f} %",
                      ours=f"{r['test error % (mean)']:.2f} % (per seed {r['per seed']})", value=r["difference"],
                      min_scale="full")

# %% [markdown]
# Where this chapter departs from the thesis, listed once as `DEVIATIONS` in `effcourse/soft_sharing/config.py`
# (the reproduction report lists the same entries):

# %%
run.deviations_table()

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing in a cell above and asks what the chapter's equations predict. The solutions
# reuse the worked example of Section 3 (`alpha_ex`, `T_ex`) and the library's functions, and check their answer
# with an assertion at every scale and seed.
#
# ```{exercise} Doubling the depth
# :label: ch05-double-depth
#
# Section 1 counts $k C^2 K^2 + kL$ parameters for a shared stack of $L$ convolutions against $L C^2 K^2$ for an
# unshared one. What happens to each when the depth doubles? Build the digits stack of Section 4 ($C = 16$,
# $K = 3$) with `SharedResidualCNN(16, L, templates, device="meta")` for $L = 8$ and $16$, unshared
# (`templates=None`) and with $k = 2$ templates, and compare their `stack_parameters()`.
# ```
#
# ```{solution-start} ch05-double-depth
# :class: dropdown
# ```
#
# An unshared layer brings its own $C^2 K^2 = 2{,}304$ weights, so the unshared stack doubles, from 18,432 to
# 36,864. In the shared stack the templates stay as they are and each new layer adds only its $k$ coefficients:
# 16 layers cost $kL = 16$ parameters more than 8 (4,624 against 4,640). With every doubling of the depth the
# shared stack's share of the unshared one nearly halves. Depth becomes almost free in parameters, though not in
# compute: every layer still runs a full convolution. The code checks both differences exactly.

# %%
depth_params = {(L, k): SharedResidualCNN(16, L, k, device="meta").stack_parameters()
                for L in (8, 16) for k in (None, 2)}
conv_weights = 16 * 16 * 3 * 3  # C^2 K^2: one unshared 3x3 convolution
assert depth_params[16, None] == 2 * depth_params[8, None] == 16 * conv_weights, "expected the unshared stack to double"
assert depth_params[16, 2] - depth_params[8, 2] == 2 * 8, "expected the shared stack to grow by k L = 16 coefficients"
run.table([{"depth L": L, "unshared": depth_params[L, None], "k = 2 templates": depth_params[L, 2],
            "share": depth_params[L, 2] / depth_params[L, None]} for L in (8, 16)],
          fmt={"unshared": ",", "k = 2 templates": ",", "share": ".1%"}, caption="Stack parameters against depth")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} When the least-squares rounding is exact
# :label: ch05-mean-rounding
#
# In the worked example of Section 3, layer 3 is $-1.5 \times$ layer 1. Replace it by $c \times$ layer 1 for
# $c \in \{1, 2, -1, -1.5\}$, round with `least_squares_rounding` and with `scaled_rounding`, and compute each
# layer's relative weight error with the templates `T_ex`, as the cell of Section 3 does. Predict the errors of
# layers 1 and 3 under the thesis's rounding from $c$ alone.
# ```
#
# ```{solution-start} ch05-mean-rounding
# :class: dropdown
# ```
#
# Row $g$ of $B$ is the mean of group $g$'s columns, here $\frac{1 + c}{2}\,\alpha^{(1)}$. Layer 1's weight
# becomes $\frac{1 + c}{2} W^{(1)}$, a relative error of $|1 - c|/2$; layer 3's weight $c\,W^{(1)}$ is replaced by
# the same mean, an error of $|1 - c| / (2|c|)$. Neither depends on the templates. Only $c = 1$, identical
# columns, is exact; $c = -1$ wipes out both layers (error 1); $c = -1.5$ gives the chapter's 1.25 and 0.83. The
# scaled rounding keeps each layer's factor and is exact for every $c$. The code checks both formulas and the
# scaled rounding's error to $10^{-12}$.

# %%
from effcourse.soft_sharing import scaled_rounding

round_rows = []
for c in (1.0, 2.0, -1.0, -1.5):
    alpha_c = alpha_ex.clone()
    alpha_c[:, 2] = c * alpha_ex[:, 0]
    groups_c = group_layers(layer_similarity(alpha_c), 0.99)
    w_c = alpha_c.T @ T_ex
    _, B_c = least_squares_rounding(alpha_c, groups_c)
    U_c, scale_c = scaled_rounding(alpha_c, groups_c)
    err_ls = ((B_c @ T_ex)[groups_c] - w_c).norm(dim=1) / w_c.norm(dim=1)
    err_sc = (scale_c[:, None] * (U_c.T @ T_ex)[groups_c] - w_c).norm(dim=1) / w_c.norm(dim=1)
    round_rows.append({"c": c, "layer 1": float(err_ls[0]), "|1 - c| / 2": abs(1 - c) / 2, "layer 3": float(err_ls[2]),
                       "|1 - c| / (2|c|)": abs(1 - c) / (2 * abs(c)), "scaled, worst layer": float(err_sc.max())})
assert all(abs(r["layer 1"] - r["|1 - c| / 2"]) < 1e-12 and abs(r["layer 3"] - r["|1 - c| / (2|c|)"]) < 1e-12
           for r in round_rows), "expected the least-squares errors |1 - c| / 2 and |1 - c| / (2|c|)"
assert all(r["scaled, worst layer"] < 1e-12 for r in round_rows), "expected the scaled rounding to be exact"
run.table(round_rows, fmt={"c": "+.1f", "scaled, worst layer": ".0e"}, floatfmt=".4f",
          caption="Relative weight errors of the least-squares rounding (layers 1 and 3) and of the scaled one")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Does Proposition 3.1 preserve the LSM?
# :label: ch05-lsm-basis
#
# Proposition 3.1 changes the coefficients without changing the network. Does it change the layer similarity
# matrix? Reparameterize the worked example (`alpha_ex`, `T_ex`) with `reparameterize`, once with a random
# invertible $B$ and once with a random orthogonal $Q$ (the $Q$ factor of `torch.linalg.qr` of a random matrix),
# and compare each new LSM with `S_ex`. Which entries survive every $B$?
# ```
#
# ```{solution-start} ch05-lsm-basis
# :class: dropdown
# ```
#
# The entries equal to 1 survive: parallel columns stay parallel under any linear map, since
# $(B^\top)^{-1}(-1.5\,\alpha^{(1)}) = -1.5\,(B^\top)^{-1}\alpha^{(1)}$. An orthogonal $Q$ preserves every inner
# product, so it leaves the whole LSM unchanged. A general $B$ moves the other entries freely. So the LSM describes
# the coefficients in one basis of templates, not the network: only $S = 1$, the case the exact fold needs, means
# the same in every basis. When the templates are orthogonal and of equal length, $|\cos|$ of two coefficient
# vectors equals $|\cos|$ of the two effective weights; otherwise the two differ, and a threshold such as
# $\tau = 0.95$ on the coefficients says something about the weights only approximately. Independent random
# templates with many entries are close to that case at initialization. The code checks that the weights are
# unchanged (to $10^{-8}$ of their size), that $S_{1,3}$ and $S_{2,4}$ stay 1 (to $10^{-8}$), that $Q$ moves no
# entry by more than $10^{-12}$, and that the random $B$ moves some entry by more than 0.05.

# %%
B_lsm = torch.randn(4, 4, generator=run.generator_for(950), dtype=torch.float64)
Q_lsm = torch.linalg.qr(torch.randn(4, 4, generator=run.generator_for(951), dtype=torch.float64)).Q
S_moved = {}
for name, basis in (("random B", B_lsm), ("orthogonal Q", Q_lsm)):
    alpha_b, T_b = reparameterize(alpha_ex, T_ex, basis)
    assert (alpha_b.T @ T_b - exact_w).abs().max() <= 1e-8 * exact_w.abs().max(), f"{name}: expected the same weights"
    S_b = layer_similarity(alpha_b)
    assert min(S_b[0, 2], S_b[1, 3]) > 1 - 1e-8, f"{name}: expected the parallel pairs (1, 3), (2, 4) to keep S = 1"
    S_moved[name] = float((S_b - S_ex).abs().max())
print("largest change of an LSM entry:", {name: float(f"{v:.3g}") for name, v in S_moved.items()})
assert S_moved["orthogonal Q"] < 1e-12, "expected an orthogonal Q to leave the LSM unchanged"
assert S_moved["random B"] > 0.05, "expected a random B to change the entries below 1"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} The regularizer's pull and the length of the coefficients
# :label: ch05-regularizer-scale
#
# Section 5 explains a stalled run by a gradient of $|\cos|$ that shrinks like $1/\|\alpha^{(l)}\|$. Check it:
# evaluate `recurrence_regularizer` (with $\lambda$ = `cfg.reg_lam`) and its gradient with respect to $\alpha$ at
# `alpha_ex` and at $10 \times$ `alpha_ex`. Then compute, for each layer, the inner product of $\alpha^{(l)}$ with
# its gradient. What does a gradient step on the regularizer alone do to the length of each column?
# ```
#
# ```{solution-start} ch05-regularizer-scale
# :class: dropdown
# ```
#
# Each $S_{l,l'}$ is unchanged when a column is scaled, so the regularizer $R$ takes the same value at $10\alpha$.
# Differentiating $R(c\alpha) = R(\alpha)$ gives $\nabla R(c\alpha) = \nabla R(\alpha)/c$: the pull is ten times
# weaker at ten times the length. Differentiating $R((1 + t)\,\alpha^{(l)}) = R(\alpha^{(l)})$ at $t = 0$ gives
# $\langle \alpha^{(l)}, \partial R / \partial \alpha^{(l)} \rangle = 0$: the gradient is orthogonal to each
# column, and a step $\alpha^{(l)} - \eta\, g^{(l)}$ has squared length $\|\alpha^{(l)}\|^2 + \eta^2 \|g^{(l)}\|^2$.
# A plain gradient step on the regularizer can only lengthen the coefficients, and so it weakens its own pull as
# it works, unless weight decay shortens them (the thesis exempts the coefficients from it). The code checks the equal values, a gradient
# ratio of 10 and the orthogonality to $10^{-12}$, and that a step of size 5 lengthens every column.

# %%
from effcourse.soft_sharing import recurrence_regularizer

reg_at = {}
for scale in (1.0, 10.0):
    alpha_s = (scale * alpha_ex).requires_grad_(True)
    reg_value = recurrence_regularizer(alpha_s, cfg.reg_lam)
    reg_at[scale] = (float(reg_value.detach()), torch.autograd.grad(reg_value, alpha_s)[0])
grad_ratio = float(reg_at[1.0][1].norm() / reg_at[10.0][1].norm())
radial = float((alpha_ex * reg_at[1.0][1]).sum(dim=0).abs().max())  # max_l |<alpha_l, dR/dalpha_l>|
longer = bool(((alpha_ex - 5.0 * reg_at[1.0][1]).norm(dim=0) > alpha_ex.norm(dim=0)).all())
print(f"R(alpha) = {reg_at[1.0][0]:.6f}, R(10 alpha) = {reg_at[10.0][0]:.6f}; gradient ratio {grad_ratio:.6f}")
print(f"max_l |<alpha_l, grad_l>| = {radial:.1e}; a step of size 5 lengthens every column: {longer}")
assert abs(reg_at[1.0][0] - reg_at[10.0][0]) < 1e-12, "expected R to be blind to the scale of alpha"
assert abs(grad_ratio - 10) < 1e-9 and radial < 1e-12, "expected a gradient 10x weaker and orthogonal to alpha"
assert longer, "expected a step on the regularizer alone to lengthen every column"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} What a fold at threshold tau may cost
# :label: ch05-fold-error
#
# Section 6 groups layers whose similarity reaches $\tau$ and folds each group with `scaled_rounding`. How far can
# that move a layer? Take two coefficient columns of equal length with similarity $S$,
# $\alpha^{(1)} = e_1$ and $\alpha^{(2)} = S e_1 + \sqrt{1 - S^2}\, e_2$ in $\mathbb{R}^4$, fold them into one
# group, and compute each layer's relative coefficient error for $S \in \{0.99, 0.95, 0.8, 0.5\}$.
# ```
#
# ```{solution-start} ch05-fold-error
# :class: dropdown
# ```
#
# For two unit columns at angle $\theta$ ($\cos\theta = S$), the best rank-one fit $U$ is their bisector, and each
# column lies at angle $\theta/2$ from it. The fold keeps each column's component along $U$, so the relative
# error is $\sin(\theta/2) = \sqrt{(1 - S)/2}$ for both layers. For such a pair, the chapter's $\tau = 0.95$
# allows up to 16 % of a layer's coefficients, the thesis's "close to 0.8" about 32 %, before batch-norm
# recalibration.
# (The weights move by the same fraction when the templates are orthonormal.) A threshold that sounds strict
# still allows a visible change, which is why the fold of Section 6 recalibrates batch norm. The code checks
# $\sqrt{(1 - S)/2}$ to $10^{-12}$ for every $S$.

# %%
fold_err = {}
for S in (0.99, 0.95, 0.8, 0.5):
    alpha_pair = torch.zeros(4, 2, dtype=torch.float64)
    alpha_pair[0, 0], alpha_pair[0, 1], alpha_pair[1, 1] = 1.0, S, (1 - S * S) ** 0.5
    U_pair, scale_pair = scaled_rounding(alpha_pair, torch.tensor([0, 0]))
    moved = (alpha_pair - scale_pair * U_pair[:, [0, 0]]).norm(dim=0) / alpha_pair.norm(dim=0)
    fold_err[S] = float(moved.max())
    assert (moved - ((1 - S) / 2) ** 0.5).abs().max() < 1e-12, f"expected sqrt((1 - S) / 2) at S = {S}"
print("relative coefficient error of the scaled fold, by S:", {S: round(v, 4) for S, v in fold_err.items()})

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Claims
#
# Every claim this chapter checks, with the thesis's statement and our measurement, in two tables: empirical
# claims, whose criterion over seeds is part of their name, and checks of the mathematics (identities, exact up to
# a stated tolerance). The checks are asserted at every scale. The empirical claims are asserted from `book` scale
# on, where every one of them must hold for the notebook to run through, except the rows marked *reported*: those
# are shown with their outcome and never asserted, because they hold by construction (the LSM ordering,
# Section 4), come too close to their tolerance (one template on digits, Section 4) or go either way from seed to
# seed (the naive fold, Section 6).

# %%
run.claims_table()
