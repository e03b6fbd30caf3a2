"""Chapter 4 (soft convex quantization) at three scales.  ``full`` is the thesis's CIFAR-10 VQVAE protocol
(Gautam 2024, section 5.4, Tables 5.1 and 5.3).

Seeds are counts: the chapter draws ``n_seeds`` experiment seeds from its base seed (``run.seeds``), and the
codebook-initialization study reuses the first ``n_init_seeds`` of them, so that its U(-1/K, 1/K) and N(0, 1) runs
are paired (same weights and minibatch order, only the codebook differs)."""

_COMMON = dict(
    beta=0.25, lam=0.1, alg9_steps=20, lr=1e-3,
    layer_sizes=[(4, 16), (16, 128)], layer_columns=64, alternating_steps=[2, 20, 100, 1000], alg9_instances=5,
    hull_lams=[1e-5, 1e-2, 0.1, 1.0],
)

SMOKE = dict(
    _COMMON, dataset="digits", image_channels=1, channels=32, res_channels=16, res_blocks=2, downsamples=1,
    num_codes=128, code_dim=16, batch_size=128, steps=150, eval_every=50, n_seeds=1,
    methods=["vq", "scq"], n_init_seeds=0, init_methods=[], alternating_train=False,
)

BOOK = dict(
    _COMMON, dataset="digits", image_channels=1, channels=32, res_channels=16, res_blocks=2, downsamples=1,
    num_codes=128, code_dim=16, batch_size=128, steps=800, eval_every=100, n_seeds=3,
    methods=["ae", "vq", "vq_rep", "scq"], n_init_seeds=3,
    init_methods=["vq", "vq_rep", "scq", "simvq"], alternating_train=True,
)

# The thesis (Table 5.3, CIFAR-10 column): 32x32 -> 16x16 latents, 32 conv / 16 residual channels, 2
# residual blocks, K=128 codes of dimension 16, beta=0.25, lambda=0.1, m=20, batch 128, 19,550 steps
# (50 epochs), 5 runs.
# Expected (Table 5.1, CIFAR-10): VQVAE MSE 41.19e-3, SCQVAE 1.53e-3; quant error 70.47 vs 0.15e-3; perplexity
# 6.62 vs 124.11; quantizer time 4.45 vs 7.42 ms.  Needs CIFAR-10 in $EFFCOURSE_DATA/cifar10 and a GPU.
FULL = dict(
    _COMMON, dataset="cifar10", image_channels=3, channels=32, res_channels=16, res_blocks=2, downsamples=1,
    num_codes=128, code_dim=16, batch_size=128, steps=19550, eval_every=391, n_seeds=5,
    methods=["ae", "vq", "vq_rep", "scq"], n_init_seeds=3, init_methods=["vq", "vq_rep", "scq", "simvq"],
    alternating_train=True,
)
