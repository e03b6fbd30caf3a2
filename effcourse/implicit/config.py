"""Chapter 1 (implicit models, sequential blockwise training) at three scales.

The thesis's chapter (Gautam 2024, ch. 2) has no experiment section: its conclusion names 1-D function
interpolation and MNIST / Fashion-MNIST classification but gives no sizes, budgets or numbers.  The protocol below
is this book's.  ``e2e_flop_factor``: the end-to-end baseline runs ``e2e_steps`` steps or until it has spent that
many times the sequential method's training FLOPs (counted, see :mod:`effcourse.implicit.experiments`), whichever
comes first (``None``: steps only).  Both are deterministic; wall time is never a budget.  The experiment seeds
come from the chapter's ``SEED`` (``run.seeds``): ``interp_n_seeds`` and ``cls_n_seeds`` are counts.
"""

SMOKE = dict(
    dtype="float64",
    # exact checks
    thm_instances=5, thm_samples=40, thm_block=4, thm_prev=6, thm_inputs=3,
    # 1-D interpolation
    interp_targets=["smooth", "nonsmooth"], interp_train=100, interp_test=200, interp_n_seeds=1,
    interp_n=20, interp_L=4, interp_local_steps=100, interp_local_lr=1e-2,
    interp_alternations=2, interp_steps=100, interp_lr=1e-2,
    interp_kappa=0.95, interp_e2e_lr=1e-2, interp_e2e_steps=150, interp_eval_every=25,
    # classification
    dataset="digits", cls_n_seeds=1, cls_n=50, cls_L=5, cls_alternations=1, cls_steps=50, cls_lr=2e-2,
    cls_local_steps=60, cls_local_lr=1e-2, cls_kappa=0.9, cls_e2e_lr=1e-2, cls_e2e_steps=40,
    cls_batch_size=None, cls_eval_every=10,
    e2e_flop_factor=10.0,
)

BOOK = dict(
    dtype="float64",
    thm_instances=50, thm_samples=200, thm_block=8, thm_prev=12, thm_inputs=5,
    interp_targets=["smooth", "nonsmooth"], interp_train=200, interp_test=500, interp_n_seeds=5,
    interp_n=40, interp_L=4, interp_local_steps=500, interp_local_lr=1e-2,
    interp_alternations=5, interp_steps=300, interp_lr=1e-2,
    interp_kappa=0.95, interp_e2e_lr=1e-2, interp_e2e_steps=5000, interp_eval_every=10,
    dataset="digits", cls_n_seeds=3, cls_n=100, cls_L=5, cls_alternations=2, cls_steps=100, cls_lr=2e-2,
    cls_local_steps=200, cls_local_lr=1e-2, cls_kappa=0.9, cls_e2e_lr=1e-2, cls_e2e_steps=2000,
    cls_batch_size=None, cls_eval_every=5,
    e2e_flop_factor=10.0,
)

# Not run in CI: MNIST (or "fashion-mnist") as IDX files under $EFFCOURSE_DATA/<name>, a GPU.  The thesis gives no
# settings; these scale the book's protocol up (wider model, more blocks, minibatch end-to-end training).
FULL = dict(
    dtype="float64",
    thm_instances=200, thm_samples=1000, thm_block=16, thm_prev=32, thm_inputs=10,
    interp_targets=["smooth", "nonsmooth"], interp_train=1000, interp_test=2000, interp_n_seeds=5,
    interp_n=100, interp_L=5, interp_local_steps=2000, interp_local_lr=1e-2,
    interp_alternations=5, interp_steps=500, interp_lr=1e-2,
    interp_kappa=0.95, interp_e2e_lr=1e-2, interp_e2e_steps=20000, interp_eval_every=50,
    dataset="mnist", cls_n_seeds=3, cls_n=500, cls_L=10, cls_alternations=3, cls_steps=300, cls_lr=1e-2,
    cls_local_steps=500, cls_local_lr=1e-2, cls_kappa=0.9, cls_e2e_lr=1e-3, cls_e2e_steps=20000,
    cls_batch_size=1024, cls_eval_every=100,
    e2e_flop_factor=10.0,
)
