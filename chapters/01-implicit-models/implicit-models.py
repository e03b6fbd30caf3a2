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
# # Implicit deep models and sequential blockwise training
#
# A feed-forward network computes its output by a fixed recipe: layer after layer, each consuming what the previous
# one produced. An *implicit* model instead defines its hidden state as the solution of an equation,
#
# $$
# \hat y(u) = C x + D u, \qquad x = \phi(A x + B u),
# $$
#
# a linear system with a nonlinearity wrapped around it, evaluated at equilibrium. Chapter 2 of
# {cite}`gautam2024thesis` starts from this framework of {cite}`elghaoui2021implicit`, where such models are trained
# end to end: gradients come from differentiating through the equilibrium, and after every step the matrix $A$ has
# to be projected back into a set where the equation is guaranteed to have a unique solution. The chapter proposes
# something else. Restrict $A$ to be strictly block triangular, grow the model one block at a time, and train each
# new block with everything before it frozen. No equilibrium has to be differentiated and nothing has to be
# projected; each block is a small regression problem.
#
# This chapter builds both approaches and compares them:
#
# 1. Implicit models contain feed-forward networks: an MLP rewritten as $(A, B, C, D)$ gives the same outputs.
# 2. Well-posedness: when $x = \phi(Ax + b)$ has exactly one solution, what breaks when it does not, and the two
#    tests the thesis uses ($\lambda_{\rm PF}(|A|) < 1$ and $\|A\|_\infty < 1$).
# 3. End-to-end training: the implicit gradient (checked against finite differences) and the projection onto
#    $\|A\|_\infty \le \kappa$.
# 4. Strictly block-triangular models, their relation to dense blocks, and the parameter counts of Remark 5.
# 5. Sequential greedy training (Algorithm 1) with the alternating-minimization subroutine (Algorithm 2).
# 6. Theorems 2 and 3: self-loops add nothing to a ReLU block, checked on random instances.
# 7. Experiments the thesis names but does not describe: 1-D interpolation and digit classification, sequential
#    against end-to-end training at equal compute (counted FLOPs).
#
# Equation numbers such as (2.5) are the thesis's. The thesis's chapter reports no experimental numbers, so every
# number on this page is this book's.

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
# The method lives in `effcourse.implicit`: `model` holds the implicit model, its fixed points and end-to-end
# training, `blockwise` the block-triangular model and the sequential algorithms, `experiments` the two comparisons
# of Section 7. The classification data set (`cfg.dataset`: scikit-learn's 8×8 digits below full scale) comes from
# the library's data factory as flat, standardized rows.
#
# The configuration `cfg` (`effcourse/implicit/config.py`) sets every size at three scales. `smoke` runs in seconds
# with one seed of each experiment, so that its numbers are compared with a stored baseline; `book` runs five
# interpolation seeds and three digit seeds, compares the methods at equal compute (counted FLOPs) and asserts
# every claim; `full` is the thesis-sized configuration of the closing section. The exact checks of Sections 1–6
# run at every scale. Every random draw comes from experiment seeds derived from `SEED` (`run.seeds`).
#
# Every computation here runs in float64. That is not pedantry: least squares on ReLU features is badly
# conditioned (dead units and, for a 1-D input, units whose kink lies outside the data are exactly collinear with
# others), and in float32 the rounding noise turns exact collinearity into a near one, so the least-squares output
# weights of Algorithm 2 reach $10^4$–$10^5$ and cancel only on the training points. Both training methods get the
# same precision.

# %%
import math

import cvxpy as cp
import matplotlib.pyplot as plt
import numpy as np
import torch

from effcourse import Run
from effcourse.core.data import dataset
from effcourse.core.models import MLP
from effcourse.implicit import blockwise as bw
from effcourse.implicit import experiments as ex
from effcourse.implicit import model as im
from effcourse.implicit import sweep as isw

run = Run("01-implicit-models", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
dt = getattr(torch, cfg.dtype)
factor = f"{cfg.e2e_flop_factor:g}x the FLOPs" if cfg.e2e_flop_factor else "a fixed step budget"
cls_data = dataset(cfg.dataset, flat=True, dtype=dt, device=dev)  # standardized, train-constant pixels dropped
run

# %% [markdown]
# ## 1. Implicit models generalize feed-forward networks
#
# Stack the hidden layers of an MLP into one state vector, $x = (x_1, \dots, x_{K-1})$. Layer $k$ reads only layer
# $k-1$, so $A$ has the weight $W_k$ in block $(k, k-1)$ and zeros elsewhere; $B$ feeds the input to the first
# block; $C$ reads the last block. Biases need a constant input feature: we append a 1 to $u$, so that the last
# column of $B$ carries the hidden biases and the last column of $D$ the output bias. Such an $A$ is strictly block
# triangular, hence nilpotent, and the equilibrium is reached by $K-1$ sweeps of the fixed-point iteration: one per
# layer. Residual and dense connections are more nonzero blocks in $A$ (and convolutions are structured blocks);
# recurrent ones are blocks on or above the diagonal, which is where well-posedness stops being automatic.

# %%
torch.manual_seed(run.seeds(1, offset=900)[0])  # MLP draws its weights from torch's global generator
mlp = MLP([5, 16, 12, 8, 3], device=dev, dtype=dt)
implicit_mlp = im.ImplicitModel.from_mlp(list(mlp), tol=0.0)
u_check = torch.randn(64, 5, device=dev, dtype=dt)
with torch.no_grad():
    gap_mlp = float((implicit_mlp(im.append_ones(u_check)) - mlp(u_check)).abs().max())
A_mlp = implicit_mlp.A.detach()
nilpotent = bool((torch.linalg.matrix_power(A_mlp, 3) == 0).all())

# %%
# NBVAL_CHECK_OUTPUT
print(f"state size n = {implicit_mlp.n}, input p = {implicit_mlp.p} (5 + constant), output q = {implicit_mlp.q}")
print(f"A^3 == 0 exactly: {nilpotent};  ||A||_inf > 1: {bool(im.inf_norm(A_mlp) > 1)}")
print(f"max |implicit - MLP| below 1e-12: {gap_mlp < 1e-12}")
run.claim("an MLP is an implicit model with strictly block-triangular A", gap_mlp < 1e-12 and nilpotent,
          thesis="implicit models contain feed-forward nets (sec. 2.1, after El Ghaoui et al.)",
          ours=f"3-hidden-layer MLP rewritten as (A, B, C, D): max output gap {gap_mlp:.1e} (tolerance 1e-12), "
               f"A^3 = 0 exactly: {nilpotent}", value=gap_mlp, kind="math")

# %% [markdown]
# Note that $\|A\|_\infty$ of this MLP exceeds 1: the convex test that end-to-end training enforces would reject a
# perfectly good feed-forward network. We come back to this.
#
# ## 2. Well-posedness
#
# $A$ is *well posed* for $\phi$ (Definition 1) if $x = \phi(Ax + b)$ has exactly one solution for every $b$. Without
# it the model is not a function of its input. The scalar case shows both ways to fail. Take ReLU and $a = 1.5$:
# a positive solution must satisfy $x = 1.5x + b$, i.e. $x = -2b$, and $x = 0$ is a solution iff $b \le 0$. So
# $b = 1$ admits **no** solution, and $b = -1$ admits **two**, $x = 0$ and $x = 2$.

# %%
a_bad = torch.tensor([[1.5]], device=dev, dtype=dt)
one = torch.ones(1, 1, device=dev, dtype=dt)
picard_bad = im.fixed_point(a_bad, one, tol=1e-12, max_iter=60)
try:
    im.ImplicitModel.from_matrices(a_bad, one, one)(one)
    refused = False
except im.IllPosedError:
    refused = True

# %%
# NBVAL_CHECK_OUTPUT
print("a = 1.5, b = +1: solutions", im.scalar_relu_solutions(1.5, 1.0))
print("a = 1.5, b = -1: solutions", im.scalar_relu_solutions(1.5, -1.0))
print(f"Picard from 0 with b = +1 converged: {picard_bad.converged}; x after 60 steps ~ 10^{math.log10(float(picard_bad.x)):.0f}")
print("ImplicitModel refuses this A:", refused)
run.claim("without well-posedness the equilibrium may not exist or not be unique",
          im.scalar_relu_solutions(1.5, 1.0) == [] and im.scalar_relu_solutions(1.5, -1.0) == [0.0, 2.0] and refused
          and not picard_bad.converged,
          thesis="Definition 1; a unique solution is needed for a well-defined model",
          ours=f"a = 1.5: solutions for b = 1: {im.scalar_relu_solutions(1.5, 1.0)}, for b = -1: "
               f"{im.scalar_relu_solutions(1.5, -1.0)}; Picard converged: {picard_bad.converged}; refused: {refused}",
          kind="math")

# %% [markdown]
# **Theorem 1** {cite}`elghaoui2021implicit` gives a test that works for every *component-wise non-expansive*
# activation (CONE, Definition 2: $|\phi_i(x) - \phi_i(y)| \le |x_i - y_i|$; ReLU, leaky ReLU, tanh and the sigmoid
# qualify). If the Perron-Frobenius eigenvalue of $|A|$ is below one,
#
# $$
# \lambda_{\rm PF}(|A|) < 1 \;\Longrightarrow\; A \in {\rm WP}(\phi),
# $$
#
# and the iteration $x^{(0)} = 0$, $x^{(t+1)} = \phi(Ax^{(t)} + b)$ converges to the solution. The reason in one
# line: $|x^{(t+1)} - x^{(t)}| \le |A|\, |x^{(t)} - x^{(t-1)}|$ component-wise, and powers of $|A|$ shrink when its
# spectral radius does. The set $\{A : \lambda_{\rm PF}(|A|) < 1\}$ is not convex, which is awkward inside a training
# problem, so the thesis relaxes it with the induced norm $\|A\|_\infty = \max_i \sum_j |A_{ij}|$. Every eigenvalue is
# bounded by any induced norm, hence $\lambda_{\rm PF}(|A|) \le \||A|\|_\infty = \|A\|_\infty$, and the convex set
# $\{\|A\|_\infty < 1\}$ lies inside the well-posed one. (The thesis prints a strict "$<$" between the two; it is
# "$\le$", with equality for instance for any nonnegative matrix with equal row sums, like $0.3 \cdot \mathbf 1
# \mathbf 1^\top$ in $\mathbb R^{3\times 3}$.)

# %%
gen = run.generator_for(901)
A_pf = torch.randn(30, 30, generator=gen, dtype=dt).to(dev)
A_pf = A_pf * (0.9 / im.pf_eigenvalue(A_pf))
b_pf = torch.randn(8, 30, generator=gen, dtype=dt).to(dev)
sol0 = im.fixed_point(A_pf, b_pf, "tanh", tol=1e-13, max_iter=5000)
sol1 = im.fixed_point(A_pf, b_pf, "tanh", tol=1e-13, max_iter=5000,
                      x0=10 * torch.randn(8, 30, generator=gen, dtype=dt).to(dev))
many = torch.randn(200, 12, 12, generator=gen, dtype=dt)
pf_le_inf = all(float(im.pf_eigenvalue(M)) <= float(im.inf_norm(M)) + 1e-12 for M in many)
equal_case = torch.full((3, 3), 0.3, dtype=dt)

# %%
# NBVAL_CHECK_OUTPUT
print(f"lambda_PF(|A|) = {float(im.pf_eigenvalue(A_pf)):.2f}, ||A||_inf = {float(im.inf_norm(A_pf)):.2f}")
print(f"Picard converged from 0 and from a random start: {sol0.converged and sol1.converged}; "
      f"same point to 1e-10: {float((sol0.x - sol1.x).abs().max()) < 1e-10}")
print(f"lambda_PF(|M|) <= ||M||_inf on 200 random matrices: {pf_le_inf}")
print(f"0.3 * ones(3, 3): lambda_PF = {float(im.pf_eigenvalue(equal_case)):.4f}, ||.||_inf = {float(im.inf_norm(equal_case)):.4f}")
run.claim("Theorem 1: lambda_PF(|A|) < 1 gives a unique, reachable equilibrium even when ||A||_inf > 1",
          sol0.converged and sol1.converged and float((sol0.x - sol1.x).abs().max()) < 1e-10
          and float(im.inf_norm(A_pf)) > 1,
          thesis="Theorem 1 (El Ghaoui et al.)",
          ours=f"30x30 dense A, lambda_PF 0.9, ||A||_inf {float(im.inf_norm(A_pf)):.2f}: two starts agree to "
               f"{float((sol0.x - sol1.x).abs().max()):.0e} (tolerance 1e-10)", kind="math")
run.claim("lambda_PF(|A|) <= ||A||_inf, with equality possible (the thesis prints <)",
          pf_le_inf and abs(float(im.pf_eigenvalue(equal_case)) - float(im.inf_norm(equal_case))) < 1e-12,
          thesis="lambda_PF(|A|) < ||A||_inf (sec. 2.2)",
          ours=f"<= (up to 1e-12) on 200 random matrices: {pf_le_inf}; 0.3 * ones(3, 3): "
               f"{float(im.pf_eigenvalue(equal_case)):.12f} vs {float(im.inf_norm(equal_case)):.12f}", kind="math")

# %% [markdown]
# ## 3. End-to-end training and what it costs
#
# The end-to-end problem (2.4) is
#
# $$
# \min_{A,B,C,D}\; \mathcal L\big(Y, CX + DU\big) \quad \text{s.t.}\quad X = \phi(AX + BU),\;\; \|A\|_\infty \le \kappa,
# $$
#
# with $\kappa < 1$, solved by projected gradient steps. Each step has three parts.
#
# **Forward.** Solve the equilibrium by the Picard iteration above, to a tolerance.
#
# **Backward.** Do not backpropagate through the iterations (that would store every iterate); differentiate the
# equilibrium itself. Write $z = Ax + Bu$ (per sample), $x = \phi(z)$, $d = \phi'(z)$, and let $g = \partial\mathcal
# L/\partial x$ be the gradient arriving from the output. The total derivative $v = d\mathcal L/dz$ must account for
# $z$ feeding back into itself through $x$: $v = d \odot (g + A^\top v)$. That is another fixed-point equation, with
# the same contraction factor as the forward one (its matrix is $A^\top$ scaled by $|d| \le 1$), so the same
# iteration solves it. Then $\nabla_A \mathcal L = v x^\top$ and $\nabla_B \mathcal L = v u^\top$, summed over samples.
# The thesis describes this step as "solving a separate fixed-point equation in a matrix variable"; batched over
# samples it is exactly that. This is implicit differentiation: the gradient comes from the equation that the
# solution satisfies, not from the iterations that found it. {doc}`../03-dco/dco` and {doc}`../04-scq/scq` use the
# same device on the argmin of a convex program, where `cvxpylayers` differentiates the program's optimality (KKT)
# conditions in place of a fixed-point equation.
#
# **Projection.** After the update, project $A$ back onto $\{\|A\|_\infty \le \kappa\}$. The constraint bounds the
# $\ell_1$ norm of each row separately, so the Euclidean projection splits into one $\ell_1$-ball projection per
# row: a row $a$ outside the ball becomes ${\rm sign}(a) \odot \max(|a| - \theta, 0)$, with the threshold $\theta$
# that makes its $\ell_1$ norm exactly $\kappa$. Sorting $|a|$ finds $\theta$ exactly
# {cite}`duchi2008projections`, so the whole projection costs $O(n^2 \log n)$, less than the $O(n^3)$ bisection that
# Remark 4 charges to it; cheap or not, it is work the sequential method never does.
#
# We check the implicit gradient against central finite differences (`torch.autograd.gradcheck`, float64) for a
# smooth and for the ReLU activation, and the projection against a general convex solver (cvxpy).

# %%
gen = run.generator_for(902)
A_g = im.project_inf_ball(torch.randn(7, 7, generator=gen, dtype=torch.float64), 0.8).requires_grad_(True)
b_g = torch.randn(4, 7, generator=gen, dtype=torch.float64).requires_grad_(True)
grad_ok = {act: torch.autograd.gradcheck(lambda A, b, act=act: im.implicit_fixed_point(A, b, act, 1e-13, 10_000),
                                         (A_g, b_g), eps=1e-6, atol=1e-7)
           for act in ("tanh", "relu")}

M_proj = torch.randn(12, 12, generator=gen, dtype=torch.float64)
P_ours = im.project_inf_ball(M_proj, 1.0).numpy()
P_var = cp.Variable((12, 12))
cp.Problem(cp.Minimize(cp.sum_squares(P_var - M_proj.numpy())), [cp.sum(cp.abs(P_var), axis=1) <= 1.0]).solve()
proj_gap = float(np.abs(P_ours - P_var.value).max())

# %%
# NBVAL_CHECK_OUTPUT
print("implicit gradient passes gradcheck:", grad_ok)
print(f"projection: max row l1 norm {np.abs(P_ours).sum(1).max():.12f}; matches cvxpy to 1e-5: {proj_gap < 1e-5}")
run.claim("the implicit gradient equals finite differences", all(grad_ok.values()),
          thesis="gradients by implicit differentiation through the fixed point (sec. 2.1)",
          ours=f"torch.autograd.gradcheck (float64, eps 1e-6, atol 1e-7): {grad_ok}", kind="math")
run.claim("the row-wise l1 projection is the exact projection onto ||A||_inf <= kappa", proj_gap < 1e-5,
          thesis="projection onto the well-posedness ball by bisection, O(n^3) (Remark 4)",
          ours=f"sort-based, O(n^2 log n): max gap to cvxpy {proj_gap:.1e} (tolerance 1e-5, the solver's "
               "accuracy)", value=proj_gap, kind="math")

# %% [markdown]
# ## 4. Strictly block-triangular models
#
# Split the state of order $n$ into $L$ blocks, $n = n_1 + \dots + n_L$ with $n_i = \lfloor n/L \rfloor$ for $i < L$
# and the remainder in $n_L$, and split $A$, $B$, $C$ and the features $X$ accordingly. Under Assumptions 1–3 (CONE
# $\phi$; $D = 0$; $A_{i,j} = 0$ unless $j < i$) the model reads
#
# $$
# X_1 = \phi(B_1 U), \qquad X_i = \phi\Big(\sum_{j<i} A_{i,j} X_j + B_i U\Big),\; i = 2..L, \qquad
# \hat Y = \sum_{j=1}^L C_j X_j. \tag{2.5}
# $$
#
# Block $i$ listens to every earlier block and to the input, and every block speaks to the output: a dense block in
# the sense of DenseNet {cite}`huang2017densenet`, with arbitrary linear maps on its $L(L-1)/2 + L$ connections. $A$
# is nilpotent ($A^L = 0$), so $\lambda_{\rm PF}(|A|) = 0$ and well-posedness holds for every such $A$, whatever its
# norm; the fixed point is $L$ sweeps of forward substitution.
#
# Two small corrections to the text. Assumption 3 is printed as "$A_{i,j} = 0$ for $i < j$"; the model (2.5) needs
# $A_{i,j} = 0$ for $i \le j$ (no diagonal blocks). And "upper" refers to Fig. 2.2, which stacks the blocks in
# reverse order $(X_L, \dots, X_1)$; in the natural order $(X_1, \dots, X_L)$ that `effcourse` uses, the same matrix
# is strictly *lower* block triangular.

# %%
gen = run.generator_for(903)
L_demo, sizes_demo, p_demo, q_demo = 4, bw.partition(22, 4), 3, 2
demo = bw.BlockTriangularModel(p_demo, q_demo, device=dev, dtype=dt)
for ni in sizes_demo:
    fan = demo.n + p_demo
    demo.add_block(torch.randn(ni, fan, generator=gen, dtype=dt).to(dev),
                   torch.randn(q_demo, demo.n + ni, generator=gen, dtype=dt).to(dev))
A_demo, B_demo, C_demo = demo.assemble()
u_demo = torch.randn(50, p_demo, generator=gen, dtype=dt).to(dev)
picard_demo = im.fixed_point(A_demo, u_demo @ B_demo.t(), tol=0.0)
with torch.no_grad():
    feat_gap = float((picard_demo.x - demo.features(u_demo)).abs().max())
counts_ok = all(bw.extra_nonzeros_vs_feedforward(bw.partition(n, L)) == bw.extra_nonzeros_formula(n, L)
                for n in range(8, 60, 3) for L in range(2, 8) if n >= L)

# %%
# NBVAL_CHECK_OUTPUT
print("partition of n = 22 into L = 4:", sizes_demo)
print(f"A^L == 0 exactly: {bool((torch.linalg.matrix_power(A_demo, L_demo) == 0).all())}")
print(f"Picard from 0 repeats exactly at iteration {picard_demo.iterations} (L + 1 = {L_demo + 1}); "
      f"equals forward substitution to 1e-12: {feat_gap < 1e-12}")
print(f"extra nonzeros vs a feed-forward A, formula == direct count for every (n, L) tried: {counts_ok}")
print("e.g. (n, L) = (53, 5):", bw.extra_nonzeros_vs_feedforward(bw.partition(53, 5)))
run.claim("strictly block-triangular A: nilpotent, equilibrium after L sweeps",
          bool((torch.linalg.matrix_power(A_demo, L_demo) == 0).all()) and picard_demo.iterations == L_demo + 1
          and feat_gap < 1e-12,
          thesis="Assumption 3 makes A well posed for any CONE phi (sec. 2.3)",
          ours=f"A^4 = 0: {bool((torch.linalg.matrix_power(A_demo, L_demo) == 0).all())}; Picard repeats exactly "
               f"at iteration {picard_demo.iterations}; gap to forward substitution {feat_gap:.0e} (tolerance 1e-12)",
          kind="math")
run.claim("(L-2) n_1 n_L + (L-2)(L-3)/2 n_1^2 more nonzeros than a feed-forward model", counts_ok,
          thesis="sec. 2.3, formula", ours=f"formula equals the direct count for all n in 8..59, L in 2..7: {counts_ok}",
          kind="math")

# %% [markdown]
# ## 5. Sequential greedy training (Algorithm 1) and alternating minimization (Algorithm 2)
#
# Because block $i$ depends only on earlier blocks, (2.5) can be solved greedily. **Algorithm 1** trains block 1
# alone (problem (2.6)), then, for $i = 2, \dots, L$, freezes $\{A_{k,j}, B_k, X_k\}_{k<i}$ and solves
#
# $$
# \min_{\{A_{i,j}\}_{j<i},\, B_i,\, \{C_j\}_{j\le i},\, X_i}\; \mathcal L\Big(Y, \sum_{j=1}^i C_j X_j\Big)
# \quad \text{s.t.}\quad X_i = \phi\Big(\sum_{j<i} A_{i,j} X_j + B_i U\Big), \tag{2.7}
# $$
#
# re-fitting all output blocks $C_1, \dots, C_i$ (they are "auxiliary"). Each subproblem is a one-hidden-layer
# network on the input $\tilde U_i = (X_1, \dots, X_{i-1}, U)$ with linear skips from the frozen features to the
# output. It needs no implicit differentiation (the constraint is explicit) and no projection (any $A$ of this shape
# is well posed). The loss is the squared error (2.8) for regression or the softmax cross-entropy (2.9) for
# classification (the thesis calls it "negative cross-entropy"; it is the usual one).
#
# **Algorithm 2** solves a squared-loss subproblem by alternating two easier problems, starting from random
# $\tilde A_i = (A_{i,1}, \dots, A_{i,i-1}, B_i)$ (the thesis leaves the initialization open; we draw Gaussian entries
# scaled by the fan-in):
#
# 1. with the features fixed, the output weights by least squares, $\min_{C_1..C_i} \|Y - \sum_{j\le i} C_j
#    X_j\|_F^2$ (2.11), in closed form (the text cites this as "(3.14)");
# 2. with $C_i$ fixed, the shallow ReLU problem $\min_{\tilde A_i} \|\tilde Y - C_i \phi(\tilde A_i \tilde U_i)\|_F^2$
#    with residual target $\tilde Y = Y - \sum_{j<i} C_j X_j$ (2.12); we use Adam.
#
# We end every subproblem with one more least-squares fit. Then the objective cannot go up from one block to the
# next: $C_i = 0$ with the previous $C_1..C_{i-1}$ is feasible for the final fit of block $i$ and reproduces the
# previous objective. For the cross-entropy loss we use plain local search (Remark 2): Adam on $\tilde A_i$ and all
# of $C_1..C_i$ jointly, warm-started at the previous $C$ with $C_i = 0$.
#
# **Remark 5** counts what each subproblem optimizes: $n_i(\sum_{j<i} n_j + m + p) + q\sum_{j\le i} n_j$ variables,
# where the $m$ counts the features $X_i$ as variables, against $n(n + m + p + q)$ for end-to-end training. The
# table is for the digits experiment below ($m$ training images, $p$ pixels plus the constant).

# %%
m_cls, p_cls, q_cls = cls_data.x_train.shape[0], cls_data.num_features + 1, cls_data.num_classes  # + constant
sizes_cls = bw.partition(cfg.cls_n, cfg.cls_L)
var_rows = bw.subproblem_variables(sizes_cls, m_cls, p_cls, q_cls)
w_rows = bw.subproblem_weights(sizes_cls, p_cls, q_cls)
e2e_vars = bw.end_to_end_variables(cfg.cls_n, m_cls, p_cls, q_cls)
e2e_weights = cfg.cls_n * (cfg.cls_n + p_cls + q_cls) + q_cls * p_cls  # A, B, C and D
run.table([*({"subproblem": str(i), "variables (Remark 5, with X_i)": v, "weights only": w}
             for i, (v, w) in enumerate(zip(var_rows, w_rows), 1)),
           {"subproblem": "end to end", "variables (Remark 5, with X_i)": e2e_vars, "weights only": e2e_weights}],
          fmt={"variables (Remark 5, with X_i)": ",", "weights only": ","})

# %%
# NBVAL_CHECK_OUTPUT
print(f"n = {cfg.cls_n}, L = {cfg.cls_L}, m = {m_cls}, p = {p_cls}, q = {q_cls}; blocks {sizes_cls}")
print(f"largest subproblem: {max(var_rows):,} variables; end to end: {e2e_vars:,}")
print(f"final sequential model: {bw.model_weights(sizes_cls, p_cls, q_cls):,} weights (A has "
      f"{bw.strict_nonzeros(sizes_cls):,} nonzeros of {cfg.cls_n ** 2:,})")
run.claim("each subproblem optimizes far fewer variables than end-to-end training",
          max(var_rows) < e2e_vars / 2,
          thesis="Remark 5: n_i (sum_{j<i} n_j + m + p) + q sum_{j<=i} n_j vs n (n + m + p + q)",
          ours=f"largest subproblem {max(var_rows):,} vs end to end {e2e_vars:,} (digits, n = {cfg.cls_n}, "
               f"L = {cfg.cls_L})", value=max(var_rows) / e2e_vars, kind="math")

# %% [markdown]
# Most of the count is the features $X_i$ themselves ($n_i m$), which a gradient solver never stores as variables;
# the weights are the smaller column. Either way each subproblem is a fraction of the end-to-end problem, and the
# finished model has about half the weights of a dense $A$ of the same order, because half of $A$ is structurally
# zero.
#
# ## 6. Self-loops add nothing: Theorems 2 and 3
#
# What if each block may also feed back into itself? Allow diagonal blocks $A_{i,i}$, upper triangular with
# $-1 < {\rm diag}(A_{i,i}) < 1$ (so $\lambda_{\rm PF}(|A|) = \max|{\rm diag}| < 1$ and the model stays well posed;
# the text writes the triangularity constraint of (2.13) on $A_{i,j}$, it means $A_{i,i}$). Now $X_i$ appears on both
# sides of its own equation and the subproblem is implicit again. **Theorem 2** (one unit per block) says that for
# ReLU this buys nothing: $X_i = {\rm ReLU}(a_{ii} X_i + \sum_{j<i} a_{ij} X_j + b_i U)$ holds iff
# $X_i = {\rm ReLU}(\sum_{j<i} \gamma_j X_j + \lambda U)$ with
#
# $$
# \gamma_j = \frac{a_{ij}}{1 - a_{ii}}, \qquad \lambda = \frac{b_i}{1 - a_{ii}} .
# $$
#
# Sample by sample: where $X_{il} > 0$ the ReLU is the identity and the equation is linear in $X_{il}$, solved by
# dividing by $1 - a_{ii} > 0$; where $X_{il} = 0$ the pre-activation is $\le 0$, and dividing by a positive number
# keeps it so. Conversely, given $\gamma, \lambda$, choose $a_{ii} = 1 - \epsilon$ and scale the rest by $\epsilon$.
# The text asks only $\epsilon > 0$; it must also be below 2, or $a_{ii} \le -1$ leaves the feasible set.
# **Theorem 3** (Sec. 2.6) is the same argument row by row for blocks of any size: row $k$ of an upper-triangular
# $A_{i,i}$ involves only rows $r \ge k$, so after dividing by $1 - (A_{i,i})_{kk}$ row $k$ is an explicit ReLU of the
# rows *below* it (2.14), evaluated by back-substitution $k = n_i, \dots, 1$. (As printed, the theorem lets the
# coefficients depend on the sample $l$, which would make it vacuous; they must be the same for all samples.)
#
# We check both directions on random instances: solve the self-loop block by Picard iteration and compare it with
# back-substitution through the explicit coefficients; and build a self-loop block from random explicit coefficients
# with a random $\epsilon \in (0.2, 1.8)$ and check that the explicit features solve its implicit equation (and are
# what Picard iteration finds). Gaps are relative to the size of the features: a diagonal entry near 1 divides by
# nearly 0 and makes the features large. The tolerance is $10^{-10}$, or the rounding floor of the Picard iteration
# where that is larger: an error made in one step is amplified by all later ones, by at most
# $\|(I - |A_{i,i}|)^{-1}\|_\infty$, which reaches $10^4$–$10^6$ for a strongly non-normal block (a diagonal near
# $\pm 1$ with large entries above it). Such blocks end in a limit cycle at that level, with steps of
# $10^{-12}$–$10^{-11}$, so the iteration also stops, as converged, once its step has stopped shrinking below that
# floor (`selfloops.implicit_block`); the floor is $64(n_i + 1)\varepsilon\,\|(I - |A_{i,i}|)^{-1}\|_\infty$, with
# $\varepsilon$ the float64 epsilon.

# %%
thm_sizes = dict(samples=cfg.thm_samples, prev=cfg.thm_prev, inputs=cfg.thm_inputs, dtype=dt, device=dev)
thm2 = ex.theorem_errors(1, cfg.thm_instances, run.seeds(1, offset=904)[0], **thm_sizes)
thm3 = ex.theorem_errors(cfg.thm_block, cfg.thm_instances, run.seeds(1, offset=905)[0], **thm_sizes)


def thm_text(t):
    floor = f"; {t.floored} of {3 * t.instances} checks at their rounding floor above 1e-10" if t.floored else ""
    return (f"{t.instances} random instances, both directions: max relative error {t.max_error:.0e}, largest "
            f"error / tolerance {t.worst_vs_tol:.0e}{floor}")


# %%
# NBVAL_CHECK_OUTPUT
for name, t in (("Theorem 2 (n_i = 1)", thm2), (f"Theorem 3 (n_i = {cfg.thm_block})", thm3)):
    print(f"{name}: forward gap, converse residual, round trip all within tolerance: {t.held}")
run.claim("Theorem 2: a ReLU self-loop unit equals a reweighted strict unit", thm2.held, kind="math",
          thesis="gamma_j = a_ij / (1 - a_ii), lambda_k = b_ik / (1 - a_ii); exact", ours=thm_text(thm2),
          value=thm2.max_error)
run.claim("Theorem 3: the same for blocks of any size, by back-substitution (2.14)", thm3.held, kind="math",
          thesis="(2.14), exact", ours=f"{cfg.thm_block}-unit blocks; " + thm_text(thm3), value=thm3.max_error)

# %% [markdown]
# How to read the two rows: the largest relative error is what one would quote; the ratio of each error to its own
# tolerance is what the check asserts, and it must stay at most 1. When some checks are at their rounding floor,
# the row says how many: those are the strongly non-normal blocks, whose features Picard iteration can only pin
# down to the floor, however long it runs. The explicit side, back-substitution, has no iteration and no such
# limit, so the gap is the iteration's, not the theorem's. A gap far above the floor would mean that the two
# parametrizations differ, which is what the theorems rule out.
#
# So for ReLU models the sequential method loses nothing by forbidding self-loops: any self-loop block it could have
# learned is a strict block with rescaled weights, which Algorithm 2 can fit directly.
#
# ## 7. Experiments: sequential against end-to-end training
#
# The thesis's conclusion reports that the sequential method beats end-to-end training of dense implicit models in
# accuracy, parameter efficiency and training time on function interpolation, MNIST and Fashion-MNIST, but the
# chapter gives no settings and no numbers. Our protocol:
#
# * **Models.** Sequential: strictly block-triangular, order $n$, $L$ blocks, $D = 0$. End to end: a dense implicit
#   model of the same order $n$ with a feed-through $D$ (it can only help the baseline), ReLU, $\|A\|_\infty \le
#   \kappa$ enforced by projection after every Adam step, implicit gradients, fixed-point tolerance $10^{-6}$. Both
#   get the constant input feature.
# * **Compute, not time.** Budgets are counted floating-point operations: every matrix product that runs during
#   training, counted by `torch.utils.flop_counter.FlopCounterMode` (for end to end this includes every Picard
#   and adjoint iteration), plus, for Algorithm 2's least-squares fits, which are SVDs and invisible to that
#   counter, the textbook count $6Mr^2 + 20r^3 + 2mkr$ for an $m \times k$ design ($M = \max$, $r = \min$). The
#   end-to-end run is read off its learning curve at the sequential method's FLOPs ("equal compute") and at
#   `e2e_flop_factor` times them, and it stops there (or at `interp_e2e_steps` steps). A FLOP count does not depend
#   on the machine or its load, so neither does any outcome below. Wall time is measured and shown in the tables;
#   it is never compared: at these sizes it is dominated by per-operation overhead (the sequential method runs
#   thousands of tiny Adam steps), which FLOPs do not see.
# * **Seeds.** Every replicate draws its initializations (both methods) and, for interpolation, its test points from
#   experiment seeds derived from `SEED` (`run.seeds`), so another `SEED` is an independent replicate. The digits
#   train/test split is the data factory's fixed split.
#
# ### 7a. 1-D interpolation
#
# Targets on $u \in [-3, 3]$: the smooth $f(u) = \sin 2u + 0.3u$ and the non-smooth $f(u) = |\sin 2u| - 0.2\,{\rm
# sign}\,u$. Training inputs are an even grid, test inputs uniform random in the same interval (interpolation, not
# extrapolation: with random training points, an exact least-squares fit may put a huge weight on a unit active at
# a single edge point, which then explodes between points). Everything minimizes the squared error.
#
# The thesis offers two solvers for the subproblems, and we run both: gradient local search (Remark 2; Adam on
# $\tilde A_i$ and $C_1..C_i$ jointly, `interp_local_steps` steps per block) and Algorithm 2 (`interp_alternations`
# alternations of exact least squares and `interp_steps` Adam steps). The claims are about local search; these
# budgets were fixed before the FLOP-based protocol, on the book's earlier development seeds.

# %%
interp_seeds, interp_test_seeds = run.seeds(cfg.interp_n_seeds), run.seeds(cfg.interp_n_seeds, offset=500)
if run.scale == "full":  # trained by the sweep (see "At the thesis's scale")
    interp = isw.interpolation(run.sweep_results(), cfg, interp_seeds, interp_test_seeds, device=dev)
else:
    interp = ex.interpolation_sweep(cfg, interp_seeds, interp_test_seeds, dtype=dt, device=dev)
run.table(ex.interpolation_rows(interp, factor), caption="Test MSE (training GFLOPs; seconds, shown only).")

# %%
first = interp_seeds[0]
for target in cfg.interp_targets:
    r = interp[target, first]
    run.metric(f"interp/{target}/seq_local_test_mse", r.seq_test)
    run.metric(f"interp/{target}/seq_altmin_test_mse", r.alt_test)
    run.metric(f"interp/{target}/seq_altmin_final_objective", r.alt.objectives[-1])
    run.metric(f"interp/{target}/e2e_test_mse_last", r.e2e_final)
    run.metric(f"interp/{target}/seq_local_gflops", r.seq.flops / 1e9)
monotone_interp = all(r.alt.is_monotone() for r in interp.values())
run.claim("Algorithm 2 never increases the training objective from one block to the next", monotone_interp,
          thesis="implied by the greedy scheme when (2.11) is solved exactly (C_i = 0 is feasible)",
          ours=f"non-increasing (up to 1e-10 relative) on all {len(interp)} interpolation runs: {monotone_interp}",
          kind="math")

# %% mystnb={"image": {"alt": "Three panels. Left and centre: the smooth and the non-smooth target on u from -3 to 3 with the fits of the sequential and the end-to-end model; right: test MSE against counted training FLOPs on log-log axes for all seeds, the sequential models as dots (local search) and crosses (Algorithm 2), the end-to-end runs as learning curves."}, "figure": {"caption": "1-D interpolation: fits of the sequential (blockwise) and the end-to-end implicit model for the first seed (left, centre), and test error against training FLOPs for every seed (right).", "name": "fig-implicit-models-interpolation"}}
ex.plot_interpolation(interp, seed=first)
plt.show()

# %% [markdown]
# The ratio of the two test errors, seed by seed, is what the claims are about: above 1 the sequential model is the
# better one. Three comparisons: local search at equal FLOPs, local search against an end-to-end run given
# `e2e_flop_factor` times its FLOPs, and Algorithm 2 at its own FLOPs. The claim is a median over the seeds with a
# threshold of 3, which leaves a wide margin below the ratios seen on the development seeds (base seeds 0–4);
# single seeds are in the table.

# %%
ratios, long_ratios = ex.interpolation_ratios(interp, "equal"), ex.interpolation_ratios(interp, "long")
k_int = len(interp_seeds)
interp_held = {t: run.claim(
    f"median over {k_int} seeds, 1-D interpolation ({t}): at equal FLOPs, end to end's test MSE is >= 3x "
    "sequential's", float(np.median(ratios[t])) >= 3, kind="empirical", min_scale="book",
    thesis="superior performance and training time on function interpolation (sec. 2.5; no numbers)",
    ours=f"end-to-end test MSE / sequential (local search) at equal FLOPs: median {np.median(ratios[t]):.1f}x, "
         f"min {ratios[t].min():.1f}x, max {ratios[t].max():.1f}x") for t in cfg.interp_targets}
run.table(ex.ratio_rows(interp, factor), caption="End-to-end test MSE over the sequential method's, per seed "
          "(median in brackets).")

# %%
steps_eq = [r.hist.steps[int(np.searchsorted(r.hist.flops, r.seq.flops, side="right")) - 1] for r in interp.values()]
span = f"{min(steps_eq)}" if min(steps_eq) == max(steps_eq) else f"{min(steps_eq)}-{max(steps_eq)}"
print(f"At equal FLOPs the end-to-end runs have taken {span} steps (read at checkpoints every "
      f"{cfg.interp_eval_every} steps). Given {factor}, end to end beats sequential on "
      + "; ".join(f"{int((long_ratios[t] < 1).sum())} of {k_int} seeds ({t})" for t in cfg.interp_targets) + ".")
for t in cfg.interp_targets:
    print(f"{t}: the median claim {'held' if interp_held[t] else 'did NOT hold'}; sequential better at equal FLOPs "
          f"on {int((ratios[t] > 1).sum())} of {k_int} seeds.")

# %% [markdown]
# Why compute and not steps: an end-to-end step and a sequential step are different objects. One sequential Adam
# step touches a single block of width $n_i$ with an explicit forward pass; one end-to-end step solves the
# equilibrium of the whole model of order $n$ by Picard iteration, tens of iterations of an $m \times n$ by
# $n \times n$ product, and then the adjoint equation in the backward pass. Counting steps would hide that; counting
# seconds would make the outcome depend on the machine, its load and its thread count (the first version of this
# chapter compared at equal wall time, and its outcome moved with the number of BLAS threads). Counted FLOPs are the
# same on every machine and at every thread count, up to the rare extra Picard iteration that rounding can cause.
#
# ### 7b. Digit classification
#
# scikit-learn's 8×8 digits (1,257 training and 540 test images after the book's fixed split, standardized; the
# thesis uses MNIST and Fashion-MNIST, which the `full` configuration reads from a local folder). Three learners:
#
# * sequential, Algorithm 2 on one-hot targets with the squared loss;
# * sequential, local search with the softmax cross-entropy (2.9);
# * end to end with the squared loss (the same objective as the first) and with the cross-entropy.
#
# Here the end-to-end budget is `e2e_flop_factor` times the FLOPs of Algorithm 2 (or `cls_e2e_steps` steps), and
# every end-to-end checkpoint records the test accuracy.

# %%
cls_seeds = run.seeds(cfg.cls_n_seeds, offset=100)
if run.scale == "full":  # trained by the sweep
    cls = isw.digits(run.sweep_results(), cfg, cls_seeds, device=dev)
else:
    cls = ex.digits_sweep(cfg, cls_data, cls_seeds)
s0 = next(iter(cls))
run.metric("digits/seq_altmin_acc", cls[s0].seq_acc)
run.metric("digits/seq_local_ce_acc", cls[s0].seq_ce_acc)
run.metric("digits/seq_final_objective", cls[s0].seq.objectives[-1])
run.metric("digits/e2e_mse_acc_last", cls[s0].hists["mse"].evals[-1])
run.metric("digits/seq_altmin_gflops", cls[s0].seq.flops / 1e9)
run.table(ex.digits_rows(cls), caption="Test accuracy (training GFLOPs; seconds, shown only) per seed.")

# %% [markdown]
# Algorithm 2's first seed, block by block: the training objective after each block (the claim below checks that it
# never rises), and the FLOPs of each subproblem, which grow with the block's fan-in (it reads every earlier
# block).

# %%
run.table([{"block": b.index, "units": b.size, "training objective (1/2 MSE)": b.objective, "GFLOPs": b.flops / 1e9,
            "seconds (shown only)": b.seconds} for b in cls[s0].seq.blocks],
          fmt={"training objective (1/2 MSE)": ".4f", "GFLOPs": ".2f", "seconds (shown only)": ".2f"})

# %% mystnb={"image": {"alt": "Test accuracy on digits against counted training FLOPs on a log axis, y from 0.8 to 1.0: end-to-end runs with the squared and the cross-entropy loss climb as lines, and the two sequential methods appear as single points."}}
ex.plot_digits(cls)
plt.show()

# %% [markdown]
# The claims compare the squared-loss runs, which minimize the same objective: the worst seed's accuracy of the
# sequential model against a threshold of 0.95, and the mean gap after the long end-to-end budget. The threshold of
# 0.95 is a floor for "accurate" on this small data set, chosen well below every development seed (base seeds 0–4);
# the thesis gives no number to hold it to. The gap claim is reported, not asserted (see
# *What did not reproduce*). The cross-entropy runs are shown for comparison: the sequential local search with the
# cross-entropy (2.9) is the thesis's recipe for classification, and end to end with the same loss is its natural
# baseline.

# %%
dsum = ex.digits_summary(cls)
k_cls = len(cls)
print(f"Mean over {k_cls} seeds: sequential {dsum.seq_acc.mean():.3f} with {dsum.seq_flops.mean() / 1e9:.1f} GFLOPs; "
      f"end to end (MSE) {dsum.e2e_equal.mean():.3f} at equal FLOPs and {dsum.e2e_last.mean():.3f} after "
      f"{dsum.e2e_last_multiple.mean():.0f}x them. End to end first matches the sequential accuracy after "
      f"{', '.join(f'{c:.1f}' for c in dsum.catch_up)} times the sequential FLOPs (inf: not in the run).")
run.claim("Algorithm 2 is monotone on digits too", all(r.seq.is_monotone() for r in cls.values()), kind="math",
          thesis="implied by the greedy scheme", ours=f"non-increasing (up to 1e-10 relative) on all {k_cls} runs: "
                                                     f"{all(r.seq.is_monotone() for r in cls.values())}")
acc_held = run.claim(f"worst of {k_cls} seeds, digits: the sequential model (Alg. 2) reaches test accuracy >= 0.95",
                     bool(dsum.seq_acc.min() >= 0.95), kind="empirical", min_scale="book",
                     thesis="(MNIST / Fashion-MNIST named, no numbers)",
                     ours=f"test accuracy {', '.join(f'{a:.3f}' for a in dsum.seq_acc)} with "
                          f"{dsum.seq_flops.mean() / 1e9:.1f} GFLOPs")
gap_last = float(dsum.e2e_last.mean() - dsum.seq_acc.mean())
close_held = run.claim(f"mean over {k_cls} seeds, digits: end to end given {factor} is within 2 points of sequential",
                       abs(gap_last) <= 0.02, kind="empirical", min_scale="book", assert_claim=False,
                       thesis="(the thesis claims superior accuracy, without numbers)",
                       ours=f"end to end after {dsum.e2e_last_multiple.mean():.0f}x the FLOPs: "
                            f"{dsum.e2e_last.mean():.3f} vs sequential {dsum.seq_acc.mean():.3f} ({100 * gap_last:+.1f} "
                            "points)")

# %% [markdown]
# ### Where the compute and the time of end-to-end training go
#
# The phases of the end-to-end steps above, summed over the digits runs, as shares of wall time (shown, not
# compared): the forward fixed-point solves, then the adjoint solves of the implicit backward pass, Adam's update,
# and the projection. The sequential method has none of the solves: its subproblems are explicit.
#
# The end-to-end steps run through the library's shared training loop (`effcourse.core.train.fit`), and the clock
# runs only inside them: the forward phase is the loss evaluation with its fixed-point solve, the backward phase
# the implicit gradient, the update Adam's step, and the projection the hook that runs after every step.
# Evaluation at the checkpoints is neither timed nor counted.

# %%
shares = ex.phase_shares(h for r in cls.values() for h in r.hists.values())
gf_step = np.mean([h.flops[-1] / h.steps[-1] for r in cls.values() for h in r.hists.values()]) / 1e9
print(f"One end-to-end step on digits costs {gf_step:.2f} GFLOPs on average; Algorithm 2 spends "
      f"{dsum.seq_flops.mean() / 1e9:.1f} GFLOPs on its whole model.")
run.table([{"phase": k, "share of end-to-end step time": f"{100 * v:.0f}%"} for k, v in shares.items()])

# %% [markdown]
# ## What did not reproduce
#
# The thesis sums its chapter up as "superior performance, parameter efficiency and training time as compared to
# end-to-end optimization". The table collects, from the runs above, where our numbers support, qualify or
# contradict that summary; every entry is computed by this run.

# %%
beat_long = {t: int((long_ratios[t] < 1).sum()) for t in cfg.interp_targets}
spread_alt, spread_local = ex.seed_spread(interp, "altmin"), ex.seed_spread(interp, "local")
gap_equal = 100 * (dsum.seq_acc.mean() - dsum.e2e_equal.mean())
run.table([
    {"thesis says": "superior performance (interpolation)",
     "our finding (this run)": "; ".join(f"{t}: median ratio {np.median(ratios[t]):.1f}x at equal FLOPs (claim "
                                         f"{'held' if interp_held[t] else 'did not hold'})" for t in cfg.interp_targets)
     + f". Given {factor}, end to end beats sequential on "
     + "; ".join(f"{beat_long[t]} of {k_int} seeds on the {t} target (median ratio "
                 f"{np.median(long_ratios[t]):.2f})" for t in cfg.interp_targets)},
    {"thesis says": "superior performance (classification)",
     "our finding (this run)": f"at equal FLOPs the sequential model is {abs(gap_equal):.1f} points "
     f"{'ahead of' if gap_equal >= 0 else 'behind'} end to end (squared loss). Given {factor}, end to end ends "
     f"{abs(100 * gap_last):.1f} points {'ahead of' if gap_last >= 0 else 'behind'} it (within 2 points: "
     f"{close_held}); it first matches the sequential accuracy after "
     f"{', '.join(f'{c:.1f}' for c in dsum.catch_up)}x the sequential FLOPs (inf: not within the run)"},
    {"thesis says": "Algorithm 2 solves the squared-loss subproblems well",
     "our finding (this run)": "on interpolation its test error spans "
     f"{', '.join(f'{x:.0f}x' for x in spread_alt.values())} between the best and worst seed (local search: "
     f"{', '.join(f'{x:.0f}x' for x in spread_local.values())}); on digits the worst seed reaches "
     f"{dsum.seq_acc.min():.3f}"},
    {"thesis says": "parameter efficiency",
     "our finding (this run)": f"structural: the strictly triangular A has {bw.strict_nonzeros(sizes_cls):,} of "
     f"{cfg.cls_n ** 2:,} entries free; accuracy per parameter was not measured by the thesis either"},
])

# %% [markdown]
# In words: measured in compute, the sequential method is cheap because it never solves a fixed-point equation;
# Section 7b prints what one end-to-end step costs against the whole sequential training in this run. The greedy
# scheme fits each block once, with earlier blocks frozen, and never revisits it, while the end-to-end method
# keeps improving all of $A$; whether and how often that lets it pass the sequential model within the longer
# budget is in the rows above, for this run. Equal compute is not equal time: on a CPU at these sizes the
# sequential method's many small Adam steps are dominated by per-operation overhead, which FLOPs do not count, so
# its lead in seconds is smaller than its lead in FLOPs (the tables show both; no seconds figure is a claim). The
# claim that end to end, given `e2e_flop_factor` times the FLOPs, comes within 2 points of the sequential model on
# digits is shown but not asserted: its outcome depends on how far that budget reaches, a choice of this book,
# not of the thesis. Exact least squares on ReLU features of a 1-D input is badly conditioned (Section 5), a
# likely reason for the spread of Algorithm 2's test error across seeds in the table.
#
# Two statements of the text did not survive as printed either, both corrected above: $\lambda_{\rm PF}(|A|)$ is
# bounded by $\|A\|_\infty$ with "$\le$", not "$<$" (Section 2), and Assumption 3 needs $A_{i,j} = 0$ for
# $i \le j$, not $i < j$ (Section 4).
#
# ## At the thesis's scale
#
# The `full` configuration scales the book's protocol up to the data the thesis names: MNIST from IDX files under
# `$EFFCOURSE_DATA/mnist` (set `dataset` to `"fashion-mnist"` for the other one) with $n = 500$ in 10 blocks and
# end-to-end minibatches of 1,024, and 5 seeds of interpolation on a 1,000-point grid with $n = 100$ in 5 blocks.
# At `full` this page does not train Section 7 inline. The experiments run as a resumable sweep of independent
# runs, one per interpolation target and seed (both sequential solvers and end to end) and one per MNIST seed (the
# four learners of Section 7b); each training checkpoints after every block and every 500 end-to-end steps, so a
# killed run resumes where it stopped:
#
# ```
# python -m effcourse.sweep plan 01-implicit-models                  # the runs and their GPU-hours
# python -m effcourse.sweep run 01-implicit-models --out results     # resumable; --engine ray for a cluster
# EFFCOURSE_RESULTS=results EFFCOURSE_SCALE=full                     # then execute this page
# ```
#
# The page then rebuilds from the runs exactly what the inline cells return (`isw.interpolation`, `isw.digits`), so
# every table, figure and claim of Section 7 is drawn from them; Sections 1–6 are exact checks and still run
# inline. The estimate below counts FLOPs (the sequential subproblems on the meta device, least squares and the
# fixed-point iterations analytically, the end-to-end runs capped at their FLOP budget). The plan's throughput is
# a share of a GPU's bfloat16 peak; everything here runs in float64, whose peak on an H100 is about 15 times
# lower, so the second figure is the one to plan with. Even that is a lower bound: the sequential method's
# thousands of small Adam steps are bound by per-operation overhead, which FLOPs do not see, and no run has been
# timed on a GPU yet.

# %%
from collections import Counter

from effcourse.sweep import H100_FLOPS, Sweep

full_sweep = Sweep("01-implicit-models", seed=SEED)
full_runs = Counter(spec.experiment for spec in full_sweep.specs)
fp64_share = 67 / 989  # an H100's float64 tensor-core peak over its dense bf16 peak (TFLOP/s)
print(f"{len(full_sweep.specs)} runs ({', '.join(f'{k} {e}' for e, k in full_runs.items())}), "
      f"{sum(full_sweep.flops(spec) for spec in full_sweep.specs):.1e} FLOPs: {full_sweep.gpu_hours():.2f} GPU-hours "
      f"at the plan's {H100_FLOPS:.0e} FLOP/s, {full_sweep.gpu_hours(throughput=fp64_share * H100_FLOPS):.1f} at "
      f"the same share of the float64 peak")

# %% [markdown]
# There are no thesis numbers to expect: the chapter has no experiment section, and its conclusion states
# "superior performance, parameter efficiency and training time as compared to end-to-end optimization" on
# function interpolation, MNIST and Fashion-MNIST without a table. At `full` the claims of Section 7 therefore
# keep the book's criteria, read as the thesis's statement made measurable: on each interpolation target the
# median over 5 seeds of end to end's test MSE over the sequential one at equal FLOPs is at least 3, and the
# worst of 3 seeds of the sequential model (Algorithm 2) reaches a test accuracy of at least 0.95 on MNIST, the
# threshold of the digits carried over unchanged, with no tolerance widened for the larger data set.

# %% [markdown]
# Where this chapter departs from the thesis, listed once as `DEVIATIONS` in `effcourse/implicit/config.py`
# (the reproduction report lists the same entries):

# %%
run.deviations_table()

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing in a cell above and asks what the equations of this chapter predict. The
# solutions reuse the objects the page has built (`A_mlp`, `A_demo`, `cfg`, ...) and check their answer with an
# assertion, at every scale and seed.
#
# ```{exercise} A well-posed loop that Picard iteration cannot solve
# :label: ch01-negative-loop
#
# Theorem 1's test $\lambda_{\rm PF}(|A|) < 1$ is sufficient, not necessary. Take the scalar ReLU model
# $x = {\rm relu}(ax + b)$ of Section 2 with $a = -3$, far outside the test. With `im.scalar_relu_solutions`, show
# that it has exactly one solution for every $b$ and find it for $b = 1$. Then run `im.fixed_point` from $x = 0$:
# what does the iteration do? Finally, try the damped iteration
# $x \leftarrow (1 - \theta)\, x + \theta\, {\rm relu}(ax + b)$ with $\theta = 1/4$.
# ```
#
# ```{solution-start} ch01-negative-loop
# :class: dropdown
# ```
#
# For $b > 0$ the only candidate is the positive root $x = b/(1 - a) = b/4$ ($x = 0$ would need $b \le 0$); for
# $b \le 0$ that root is not positive and $x = 0$ is the only solution. So the scalar model is well posed for every
# $a < 1$, however large $|a|$: the ReLU's sign does the work that a bound on $|a|$ cannot see. Picard iteration
# from 0 with $b = 1$ visits $0, 1, 0, 1, \dots$ (since $-3 \cdot 1 + 1 < 0$), a 2-cycle around the solution $1/4$
# that never converges. The damped map has slope $1 - \theta + \theta a = 1 - 4\theta$ where the ReLU is active,
# which is 0 for $\theta = 1/4$: it lands on $1/4$ in one step and stays there. The code checks one solution for
# each of 41 values of $b$ in $[-2, 2]$, a Picard iteration that has not converged after 100 steps and whose last
# step has size exactly 1, and the damped iterate at $1/4$ to $10^{-15}$.

# %%
a_neg, theta_damp = -3.0, 0.25
unique_everywhere = all(len(im.scalar_relu_solutions(a_neg, float(b))) == 1 for b in np.linspace(-2, 2, 41))
picard_neg = im.fixed_point(torch.full((1, 1), a_neg, device=dev, dtype=dt), torch.ones(1, 1, device=dev, dtype=dt),
                            max_iter=100)
x_damped = 0.0
for _ in range(50):
    x_damped = (1 - theta_damp) * x_damped + theta_damp * max(a_neg * x_damped + 1.0, 0.0)
print(f"a = -3: exactly one solution for all 41 values of b: {unique_everywhere}; for b = 1: "
      f"{im.scalar_relu_solutions(a_neg, 1.0)}")
print(f"Picard from 0: converged {picard_neg.converged}, last step {picard_neg.residual:g}; damped: x = {x_damped:.6f}")
assert unique_everywhere and im.scalar_relu_solutions(a_neg, 1.0) == [0.25], "expected one solution, 1/4 at b = 1"
assert not picard_neg.converged and picard_neg.residual == 1.0, "expected Picard to cycle between 0 and 1"
assert abs(x_damped - 0.25) < 1e-15, "expected the damped iteration to reach 1/4"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} What the projection does to a feed-forward network
# :label: ch01-projection-cost
#
# Section 1 noted that the MLP's $A$ (`A_mlp`) has $\|A\|_\infty > 1$, so end-to-end training would project it.
# Project it onto $\|A\|_\infty \le 0.95$ with `im.project_inf_ball`, rebuild the model with
# `im.ImplicitModel.from_matrices` (the same $B$, $C$ and $D$ as `implicit_mlp`) and compare the two models'
# outputs on `u_check`. Is the projected $A$ still nilpotent? Did the projection buy anything?
# ```
#
# ```{solution-start} ch01-projection-cost
# :class: dropdown
# ```
#
# The projection soft-thresholds each row, ${\rm sign}(a) \odot \max(|a| - \theta, 0)$, and ${\rm sign}(0) = 0$:
# a zero entry stays zero. The projected matrix keeps the sparsity pattern of `A_mlp`, so it is still strictly
# block triangular, $A^3 = 0$ exactly, and the equilibrium is still three sweeps away. The projection bought no
# well-posedness that the structure had not already given, yet it shrank every row to an $\ell_1$ norm of at most
# 0.95 and so changed the function the network computes. That is the price of replacing a structural guarantee by
# the convex norm test of Section 2. The code checks that the projected $A$ cubes to exactly zero, that its norm is
# at most 0.95, and that the outputs move by more than 1 % of their norm.

# %%
A_mlp_proj = im.project_inf_ball(A_mlp, 0.95)
projected_mlp = im.ImplicitModel.from_matrices(A_mlp_proj, implicit_mlp.B.detach(), implicit_mlp.C.detach(),
                                               implicit_mlp.D.detach(), tol=0.0)
with torch.no_grad():
    y_mlp, y_proj = (model(im.append_ones(u_check)) for model in (implicit_mlp, projected_mlp))
rel_change = float((y_proj - y_mlp).norm() / y_mlp.norm())
still_nilpotent = bool((torch.linalg.matrix_power(A_mlp_proj, 3) == 0).all())
print(f"||A||_inf: {float(im.inf_norm(A_mlp)):.2f} -> {float(im.inf_norm(A_mlp_proj)):.2f}; "
      f"projected A^3 == 0 exactly: {still_nilpotent}")
print(f"relative change of the outputs on u_check: {rel_change:.3f}")
assert still_nilpotent, "expected the projection to keep A's zeros, hence A^3 = 0"
assert float(im.inf_norm(A_mlp_proj)) <= 0.95 + 1e-12, "expected ||A||_inf <= 0.95 after the projection"
assert rel_change > 0.01, "expected the projection to change the outputs by more than 1 %"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} What a self-loop costs at inference
# :label: ch01-self-loop-cost
#
# Theorem 2 says that a ReLU self-loop adds nothing that a strict block cannot express. Measure what it costs.
# Give every unit of the block-triangular model of Section 4 the same self-loop $c$, that is
# $A = A_{\rm demo} + cI$ with `A_demo` from that section, for $c \in \{0, 0.3, 0.6, 0.9\}$, and count the
# Picard iterations (`im.fixed_point` with `tol=1e-10`) for the inputs `u_demo`. How does the count grow with $c$?
# ```
#
# ```{solution-start} ch01-self-loop-cost
# :class: dropdown
# ```
#
# $|A|$ is lower triangular with diagonal $c$, so $\lambda_{\rm PF}(|A|) = c < 1$ and the model stays well posed.
# But $A$ is no longer nilpotent. At $c = 0$ the iteration repeats exactly after $L + 1 = 5$ sweeps; for $c > 0$
# its error shrinks like $c^t$ (times a polynomial in $t$ that the off-diagonal blocks contribute), so reaching a
# tolerance $\varepsilon$ takes about $\ln(1/\varepsilon) / \ln(1/c)$ iterations, and the count times
# $\ln(1/c)$ should be nearly constant. The code checks $L + 1$ iterations at $c = 0$, a count that rises with
# $c$, and a product (iterations $\times \ln(1/c)$) that varies by less than a factor 1.5 over the three loops. A
# self-loop block is expressive for free but not evaluated for free: the strict model costs $L$ sweeps, the looped
# one a number that grows without bound as its diagonal approaches 1.

# %%
loop_iters = {}
for c_loop in (0.0, 0.3, 0.6, 0.9):
    A_loop = A_demo + c_loop * torch.eye(A_demo.shape[0], device=dev, dtype=dt)
    loop_res = im.fixed_point(A_loop, u_demo @ B_demo.t(), tol=1e-10, max_iter=5000)
    assert loop_res.converged, f"expected convergence for c = {c_loop} (lambda_PF(|A|) = c < 1)"
    loop_iters[c_loop] = loop_res.iterations
rate_products = [n_it * math.log(1 / c_loop) for c_loop, n_it in loop_iters.items() if c_loop > 0]
print("Picard iterations for self-loops c = 0, 0.3, 0.6, 0.9:", list(loop_iters.values()))
print("iterations x ln(1/c):", [round(v, 1) for v in rate_products])
assert loop_iters[0.0] == L_demo + 1, "expected L + 1 sweeps without self-loops"
assert list(loop_iters.values()) == sorted(set(loop_iters.values())), "expected more iterations as c grows"
assert max(rate_products) < 1.5 * min(rate_products), "expected iterations proportional to 1 / ln(1/c)"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} How much of A a block-triangular model can use
# :label: ch01-half-of-a
#
# Show that a strictly block-triangular $A$ with blocks $n_1, \dots, n_L$ has $(n^2 - \sum_i n_i^2)/2$ free
# entries. Then, with `bw.partition` and `bw.strict_nonzeros` at the digits model's order $n$ = `cfg.cls_n`,
# follow the count as $L$ runs from 2 to $n$. What is its largest value? Does it grow with every extra block?
# ```
#
# ```{solution-start} ch01-half-of-a
# :class: dropdown
# ```
#
# The free entries are the blocks below the diagonal. By symmetry they are half of the entries outside the
# diagonal blocks, and those number $n^2 - \sum_i n_i^2$. Since $\sum_i n_i^2 \ge n$, with equality only when
# every block has one unit, the largest count is $n(n - 1)/2$ at $L = n$: a strictly triangular $A$. So a
# sequential model never uses more than half of a dense $A$, whatever $L$: that saving is built into the structure,
# not tuned by the choice of $L$. The count does not grow with every block, though. Algorithm 1 gives every block $\lfloor n/L \rfloor$
# units and puts the remainder in the last one, and just past $L = n/2$ that last block holds about half of the
# state: at $L = n/2 + 1$ ($n$ even) the blocks are $n/2$ single units and one block of $n/2$. A balanced
# partition would not do this. The code checks the identity for every $L$, the maximum $n(n-1)/2$ at $L = n$, and
# that some $L$ has fewer free entries than $L - 1$.

# %%
n_blk = cfg.cls_n
free_entries = {L: bw.strict_nonzeros(bw.partition(n_blk, L)) for L in range(2, n_blk + 1)}
identity_ok = all(2 * free_entries[L] == n_blk ** 2 - sum(s * s for s in bw.partition(n_blk, L)) for L in free_entries)
drops = [L for L in free_entries if L > 2 and free_entries[L] < free_entries[L - 1]]
print(f"n = {n_blk}: free entries for L = 2, {n_blk // 2}, {n_blk // 2 + 1}, {n_blk}: "
      f"{free_entries[2]:,}, {free_entries[n_blk // 2]:,}, {free_entries[n_blk // 2 + 1]:,}, {free_entries[n_blk]:,} "
      f"of {n_blk ** 2:,}")
print(f"2 x free == n^2 - sum n_i^2 for every L: {identity_ok}; fewer than at L - 1 for {len(drops)} values of L")
assert identity_ok, "expected 2 x free entries == n^2 - sum_i n_i^2"
assert free_entries[n_blk] == n_blk * (n_blk - 1) // 2 == max(free_entries.values()), "expected at most n(n-1)/2"
assert drops, "expected the remainder-in-the-last-block partition to make the count non-monotone in L"

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Claims
#
# Every asserted row below held when this page was built; rows marked *not asserted* ran at a scale too small for
# the claim, and *reported* rows are shown with their outcome and never asserted. Empirical rows name their
# criterion over seeds. The thesis's chapter states its experimental results without numbers; the numbers are this
# book's.

# %%
run.claims_table()
