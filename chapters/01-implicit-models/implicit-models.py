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
#    against end-to-end training at equal wall time.
#
# Equation numbers such as (2.5) are the thesis's. The thesis's chapter reports no experimental numbers, so every
# number on this page is this book's.

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
# with one seed and fixed step budgets, so that its numbers are deterministic and are compared with a stored
# baseline; `book` runs five interpolation seeds and three digit seeds, compares the methods at equal wall time and
# asserts every claim; `full` is the thesis-sized configuration of the closing section. The exact checks of
# Sections 1–6 run at every scale.
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

run = Run("01-implicit-models", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
dt = getattr(torch, cfg.dtype)
factor = f"{cfg.e2e_time_factor:g}x the time" if cfg.e2e_time_factor else "a fixed step budget"
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
torch.manual_seed(SEED)
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
          ours=f"3-hidden-layer MLP rewritten as (A, B, C, D): max output gap {gap_mlp:.1e}, A^3 = 0",
          value=gap_mlp)

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
          ours="a = 1.5: b = 1 has no solution, b = -1 has two {0, 2}; Picard diverges; the model raises IllPosedError")

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
gen = torch.Generator().manual_seed(SEED)
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
               f"{float((sol0.x - sol1.x).abs().max()):.0e}")
run.claim("lambda_PF(|A|) <= ||A||_inf, with equality possible (the thesis prints <)",
          pf_le_inf and abs(float(im.pf_eigenvalue(equal_case)) - float(im.inf_norm(equal_case))) < 1e-12,
          thesis="lambda_PF(|A|) < ||A||_inf (sec. 2.2)",
          ours="<= on 200 random matrices; equality 0.9 = 0.9 for 0.3 * ones(3, 3)")

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
gen = torch.Generator().manual_seed(SEED + 1)
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
          ours="torch.autograd.gradcheck passes for tanh and ReLU (float64)")
run.claim("the row-wise l1 projection is the exact projection onto ||A||_inf <= kappa", proj_gap < 1e-5,
          thesis="projection onto the well-posedness ball by bisection, O(n^3) (Remark 4)",
          ours=f"sort-based, O(n^2 log n): max gap to cvxpy {proj_gap:.1e}", value=proj_gap)

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
gen = torch.Generator().manual_seed(SEED + 2)
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
          ours=f"A^4 = 0; Picard exact after 4 sweeps; gap to forward substitution {feat_gap:.0e}")
run.claim("(L-2) n_1 n_L + (L-2)(L-3)/2 n_1^2 more nonzeros than a feed-forward model", counts_ok,
          thesis="sec. 2.3, formula", ours="formula equals the direct count for all n in 8..59, L in 2..7")

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
               f"L = {cfg.cls_L})", value=max(var_rows) / e2e_vars)

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
# nearly 0 and makes the features large, and the Picard iteration, stopped at a relative step of $10^{-13}$,
# contracts slowly there.

# %%
thm_sizes = dict(samples=cfg.thm_samples, prev=cfg.thm_prev, inputs=cfg.thm_inputs, dtype=dt, device=dev)
thm2 = ex.theorem_errors(1, cfg.thm_instances, SEED + 3, **thm_sizes)
thm3 = ex.theorem_errors(cfg.thm_block, cfg.thm_instances, SEED + 4, **thm_sizes)

# %%
# NBVAL_CHECK_OUTPUT
for name, errs in (("Theorem 2 (n_i = 1)", thm2), (f"Theorem 3 (n_i = {cfg.thm_block})", thm3)):
    print(f"{name}: forward gap, converse residual, round trip all below 1e-10 (relative): {max(errs) < 1e-10}")
run.claim("Theorem 2: a ReLU self-loop unit equals a reweighted strict unit", max(thm2) < 1e-10,
          thesis="gamma_j = a_ij / (1 - a_ii), lambda_k = b_ik / (1 - a_ii); exact",
          ours=f"{cfg.thm_instances} random instances, both directions: max error {max(thm2):.0e}", value=max(thm2))
run.claim("Theorem 3: the same for blocks of any size, by back-substitution (2.14)", max(thm3) < 1e-10,
          thesis="(2.14), exact", ours=f"{cfg.thm_instances} random {cfg.thm_block}-unit blocks, both directions: "
                                       f"max error {max(thm3):.0e}", value=max(thm3))

# %% [markdown]
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
# * **Time.** We time only training (evaluation excluded), first warming both code paths up. The end-to-end run is
#   read off its learning curve at the sequential method's wall time ("equal time") and at
#   `e2e_time_factor` times it. Wall time on a shared 2-core machine is noisy; the claims below use wide margins.
# * **Seeds.** Each seed redraws the initialization of both methods (and, for interpolation, the test points).
#
# ### 7a. 1-D interpolation
#
# Targets on $u \in [-3, 3]$: the smooth $f(u) = \sin 2u + 0.3u$ and the non-smooth $f(u) = |\sin 2u| - 0.2\,{\rm
# sign}\,u$. Training inputs are an even grid, test inputs uniform random in the same interval (interpolation, not
# extrapolation: with random training points, an exact least-squares fit may put a huge weight on a unit active at
# a single edge point, which then explodes between points). Everything minimizes the squared error.
#
# The thesis offers two solvers for the subproblems, and we run both: gradient local search (Remark 2; Adam on
# $\tilde A_i$ and $C_1..C_i$ jointly, 500 steps per block) and Algorithm 2 (5 alternations of exact least squares
# and 300 Adam steps). We fixed these budgets, and the choice of local search as the sequential method the claim is
# about, on development seeds 100–104 before running the reported seeds 0–4: on those seeds Algorithm 2 was slower
# and much less reliable (its test error varied over a decade from seed to seed), local search was neither.
#
# The sweep lives in `effcourse.implicit.experiments`: for each target and seed it draws the test points, trains
# both sequential variants and then the end-to-end model for `interp_e2e_steps` steps or `e2e_time_factor` times the
# local-search time, whichever comes first, checkpointing the test error along the way.

# %%
interp = ex.interpolation_sweep(cfg, dtype=dt, device=dev)
run.table(ex.interpolation_rows(interp, factor), caption="Test MSE (training seconds).")

# %%
first = cfg.interp_seeds[0]
for target in cfg.interp_targets:
    r = interp[target, first]
    run.metric(f"interp/{target}/seq_local_test_mse", r.seq_test)
    run.metric(f"interp/{target}/seq_altmin_test_mse", r.alt_test)
    run.metric(f"interp/{target}/seq_altmin_final_objective", r.alt.objectives[-1])
    if cfg.e2e_time_factor is None:  # a fixed number of steps: deterministic
        run.metric(f"interp/{target}/e2e_test_mse_fixed_steps", r.e2e_final)
monotone_interp = all(r.alt.is_monotone() for r in interp.values())
run.claim("Algorithm 2 never increases the training objective from one block to the next", monotone_interp,
          thesis="implied by the greedy scheme when (2.11) is solved exactly (C_i = 0 is feasible)",
          ours=f"non-increasing on all {len(interp)} interpolation runs")

# %% mystnb={"image": {"alt": "Three panels. Left and centre: the smooth and the non-smooth target on u from -3 to 3 with the fits of the sequential and the end-to-end model, both close to the target; right: test MSE against training wall time on log-log axes for all seeds, where the sequential models (dots for local search, crosses for Algorithm 2) mostly sit well below the end-to-end learning curves at the time they finish."}, "figure": {"caption": "1-D interpolation: fits of the sequential (blockwise) and the end-to-end implicit model for seed 0 (left, centre), and test error against training time for every seed (right).", "name": "fig-implicit-models-interpolation"}}
ex.plot_interpolation(interp, seed=first)
plt.show()

# %% [markdown]
# The ratio of the two test errors, seed by seed, is what the claim is about: above 1 the sequential model is the
# better one. Three comparisons: local search at equal time, local search against an end-to-end run given
# `e2e_time_factor` times as long, and Algorithm 2 at its own (longer) time.

# %%
ratios, long_ratios = ex.interpolation_ratios(interp, "equal"), ex.interpolation_ratios(interp, "long")
for t in cfg.interp_targets:
    run.claim(f"1-D interpolation ({t}): at equal time, sequential beats end to end by a wide margin",
              bool((ratios[t] > 1).all()) and float(np.median(ratios[t])) >= 3,
              thesis="superior performance and training time on function interpolation (sec. 2.5; no numbers)",
              ours=f"end-to-end test MSE / sequential (local search), equal time: median "
                   f"{np.median(ratios[t]):.1f}x, min {ratios[t].min():.1f}x over {len(cfg.interp_seeds)} seeds",
              min_scale="book")
run.table(ex.ratio_rows(interp, factor), caption="End-to-end test MSE over the sequential method's, per seed "
          "(median in brackets).")

# %% [markdown]
# At equal wall time the end-to-end model has had a few hundred projected steps and still fits the targets
# coarsely; the sequential model is done ({numref}`Figure %s <fig-implicit-models-interpolation>`, right). Given
# more time the picture changes; the section *What did not reproduce* has the numbers.
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
# Here the end-to-end budget is `e2e_time_factor` times the time of Algorithm 2, and every end-to-end checkpoint
# records the test accuracy.

# %%
cls = ex.digits_sweep(cfg, cls_data)
s0 = cfg.cls_seeds[0]
run.metric("digits/seq_altmin_acc", cls[s0].seq_acc)
run.metric("digits/seq_local_ce_acc", cls[s0].seq_ce_acc)
run.metric("digits/seq_final_objective", cls[s0].seq.objectives[-1])
if cfg.e2e_time_factor is None:
    run.metric("digits/e2e_mse_acc_fixed_steps", cls[s0].hists["mse"].evals[-1])
run.table(ex.digits_rows(cls), caption="Test accuracy (training seconds) per seed.")

# %% [markdown]
# Algorithm 2's first seed, block by block: the training objective falls with every block, and each block costs
# about the same time, because each subproblem is a shallow network of about the same size.

# %%
run.table([{"block": b.index, "units": b.size, "training objective (1/2 MSE)": b.objective, "seconds": b.seconds}
           for b in cls[s0].seq.blocks], fmt={"training objective (1/2 MSE)": ".4f", "seconds": ".2f"})

# %% mystnb={"image": {"alt": "Test accuracy on digits against training wall time on a log time axis, y from 0.8 to 1.0: end-to-end runs with the squared and the cross-entropy loss climb as lines, while the two sequential methods appear as single points near 0.97 at well under a second; the end-to-end curves reach and then hover around that level after a few times the sequential time."}}
ex.plot_digits(cls)
plt.show()

# %% [markdown]
# The claims compare the squared-loss runs, which minimize the same objective, averaged over the seeds.

# %%
dsum = ex.digits_summary(cls)
print(f"Mean over {len(cfg.cls_seeds)} seeds: sequential {dsum.seq_acc.mean():.3f} in {dsum.seq_seconds.mean():.2f} "
      f"s; end to end (MSE) {dsum.e2e_equal.mean():.3f} at equal time and {dsum.e2e_last.mean():.3f} after "
      f"{dsum.e2e_last_seconds.mean():.1f} s. End to end first matches the sequential accuracy after "
      f"{', '.join(f'{c:.1f}' for c in dsum.catch_up)} times the sequential training time (inf: not in the run).")
run.claim("Algorithm 2 is monotone on digits too", all(r.seq.is_monotone() for r in cls.values()),
          thesis="implied by the greedy scheme", ours=f"non-increasing on all {len(cls)} runs")
run.claim("digits: the sequential model is accurate", bool((dsum.seq_acc >= 0.95).all()),
          thesis="(MNIST / Fashion-MNIST named, no numbers)",
          ours=f"test accuracy {', '.join(f'{a:.3f}' for a in dsum.seq_acc)} in {dsum.seq_seconds.mean():.2f} s "
               f"({len(cfg.cls_seeds)} seeds)", min_scale="book")
run.claim("digits: end to end given many times the time is comparable, not better by much",
          abs(dsum.e2e_last.mean() - dsum.seq_acc.mean()) <= 0.02,
          thesis="(the thesis claims superior accuracy, without numbers)",
          ours=f"end to end after {dsum.e2e_last_seconds.mean():.1f} s: {dsum.e2e_last.mean():.3f} vs sequential "
               f"{dsum.seq_acc.mean():.3f} in {dsum.seq_seconds.mean():.2f} s", min_scale="book")

# %% [markdown]
# ### Where the time of end-to-end training goes
#
# The phases of the end-to-end steps above, summed over the digits runs: the forward fixed-point solves dominate,
# then the adjoint solves of the implicit backward pass; the projection is a small share once it is done by sorting.
# The sequential method has none of these: its subproblems are explicit.
#
# The end-to-end steps run through the library's shared training loop (`effcourse.core.train.fit`), and the clock
# runs only inside them: the forward phase is the loss evaluation with its fixed-point solve, the backward phase
# the implicit gradient, the update Adam's step, and the projection the hook that runs after every step.
# Evaluation at the checkpoints is not timed.

# %%
shares = ex.phase_shares(h for r in cls.values() for h in r.hists.values())
run.table([{"phase": k, "share of end-to-end step time": f"{100 * v:.0f}%"} for k, v in shares.items()])

# %% [markdown]
# ## What did not reproduce
#
# The thesis sums its chapter up as "superior performance, parameter efficiency and training time as compared to
# end-to-end optimization". The table collects, from the runs above, where our numbers qualify or contradict that
# summary. The row on classification is the one that did not reproduce: at equal time the sign of the gap depends
# on the machine, and given time the end-to-end model catches up.

# %%
beat_long = {t: int((long_ratios[t] < 1).sum()) for t in cfg.interp_targets}
spread_alt, spread_local = ex.seed_spread(interp, "altmin"), ex.seed_spread(interp, "local")
run.table([
    {"thesis says": "superior performance (interpolation)",
     "our finding (this run)": f"true at equal time (claims above). Given {factor}, end to end beats sequential in "
     + "; ".join(f"{beat_long[t]} of {len(cfg.interp_seeds)} seeds on the {t} target (median ratio "
                 f"{np.median(long_ratios[t]):.2f})" for t in cfg.interp_targets)},
    {"thesis says": "superior performance (classification)",
     "our finding (this run)": "not robustly. At equal time the sequential model is "
     f"{100 * (dsum.seq_acc.mean() - dsum.e2e_equal.mean()):+.1f} points from end to end (squared loss) in this "
     "run, but the sign depends on the machine: in our runs the sequential model led by 1.3 points with one BLAS "
     "thread (0.973 vs 0.960) and trailed by 0.2 with two (0.973 vs 0.975), because the dense fixed-point solves of "
     "end to end use every core and the sequential method's small steps do not. End to end matches the sequential "
     f"accuracy after {', '.join(f'{c:.1f}' for c in dsum.catch_up)}x the sequential time and ends "
     f"{100 * (dsum.e2e_last.mean() - dsum.seq_acc.mean()):+.1f} points from it"},
    {"thesis says": "Algorithm 2 solves the squared-loss subproblems well",
     "our finding (this run)": "on interpolation its test error spans "
     f"{', '.join(f'{x:.0f}x' for x in spread_alt.values())} between the best and worst seed (local search: "
     f"{', '.join(f'{x:.0f}x' for x in spread_local.values())}) at about twice the time; on digits it is fast and "
     "good"},
    {"thesis says": "parameter efficiency",
     "our finding (this run)": f"structural: the strictly triangular A has {bw.strict_nonzeros(sizes_cls):,} of "
     f"{cfg.cls_n ** 2:,} entries free; accuracy per parameter was not measured by the thesis either"},
])

# %% [markdown]
# In words: the sequential method is a fast way to a good model. At equal time it wins clearly on interpolation;
# on digits the two are within a point or two of each other at equal time, with the winner depending on the
# hardware. It is not a better model in the limit. The greedy scheme fits each block once, with earlier blocks
# frozen, and never revisits it, while the end-to-end method keeps improving all of $A$; on the smooth target and on
# digits it passes the sequential model after a few times its training time. The cross-entropy end-to-end runs on
# digits are also much closer to the sequential method at equal time than the squared-loss ones, so part of the gap
# in the classification claim is the loss, not the training scheme. And exact least squares on ReLU features of a
# 1-D input is badly conditioned, which is the likely reason why Algorithm 2 is erratic on interpolation.
#
# Two statements of the text did not survive as printed either, both corrected above: $\lambda_{\rm PF}(|A|)$ is
# bounded by $\|A\|_\infty$ with "$\le$", not "$<$" (Section 2), and Assumption 3 needs $A_{i,j} = 0$ for
# $i \le j$, not $i < j$ (Section 4).
#
# ## At the thesis's scale
#
# With `SCALE = "full"` the same cells run MNIST (set `dataset` to `"fashion-mnist"` for the other one) from IDX
# files under `$EFFCOURSE_DATA/mnist`, with $n = 500$ in 10 blocks, minibatch end-to-end training and 5 seeds of
# interpolation on a 1,000-point grid. The thesis reports no numbers to compare with, so the claims above are the
# expected outcome.
#
# ## Claims
#
# Every row below was asserted when this page was built (rows marked *not asserted* ran at a scale too small for the
# claim). The thesis's chapter states its experimental results without numbers; the numbers are this book's.

# %%
run.claims_table()
