"""Chapter 2 (MeZO-SVRG) at three scales.  ``full`` is the thesis's protocol (Gautam 2024, Secs. 3.4, 3.11-3.16).

Queries are single-sample forward passes everywhere (MeZO 2b per step, a MeZO-SVRG anchor step 2n, a minibatch
step 4b).  Least squares and digits run their seeds side by side (``effcourse.mezo.batched``); ``*_n_seeds`` are
counts: the chapter draws the seeds themselves from its base ``SEED`` (``run.seeds``), so no seed is fixed here.
``dataset`` is the data set of the small network (through ``effcourse.core.data.dataset``).
"""

SMOKE = dict(
    # SPSA checks
    mc_draws=4_000, bias_draws=300, mu_grid=[1.0, 0.3, 0.1, 0.03, 0.01],
    # least squares, Fig. 3.1a / Table 3.7
    ls_n_seeds=3, ls_budget_mezo=200_000, ls_budget_svrg=400_000, ls_fo_steps=2_000, ls_theory_steps=400,
    ls_theory_batches=[8, 32, 128],
    # digits, Fig. 3.1b and the MeZO / MeZO-SVRG / FO-SGD comparison
    dataset="digits", dg_train=512, dg_n_seeds=3, dg_bs_batches=[8, 32, 128], dg_bs_steps=300, dg_lr=3e-3,
    dg_budget=100_000, dg_mezo_lr=1e-3, dg_svrg_lrs=[1e-2, 1e-3], dg_fo_steps=200,
    dg_mu_grid=[1.0, 1e-1, 1e-3], dg_q_grid=[1, 2, 5], dg_ablation_steps=100, dg_anchor_sizes=[512, 256, 128],
    # transformer fine-tuning
    lm_task="generated", lm_model="tiny-bert", lm_train=64, lm_test=64, lm_last_layers=0, lm_batch=16,
    lm_mezo_steps=200, lm_mezo_lr=1e-3, lm_svrg_steps=60, lm_svrg_lrs=[1e-2, 1e-3], lm_fo_steps=50, lm_fo_lr=0.03,
    lm_eval_every=10, lm_anneal=False, lm_n_seeds=2,
    # memory (one fresh process per method)
    mem_model="mlp", mem_batch=64, mem_seq=32,
    # beyond the thesis
    cos_dims=[100, 1000], cos_q=[1, 4], cos_draws=2_000,
)

BOOK = dict(
    mc_draws=20_000, bias_draws=2_000, mu_grid=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003],
    ls_n_seeds=3, ls_budget_mezo=10_000_000, ls_budget_svrg=10_000_000, ls_fo_steps=20_000, ls_theory_steps=16_000,
    ls_theory_batches=[8, 32, 128],
    dataset="digits", dg_train=512, dg_n_seeds=3, dg_bs_batches=[8, 32, 64, 128], dg_bs_steps=10_000, dg_lr=3e-3,
    dg_budget=5_000_000, dg_mezo_lr=1e-3, dg_svrg_lrs=[1e-2, 1e-3], dg_fo_steps=2_000,
    dg_mu_grid=[1.0, 0.5, 1e-1, 1e-2, 1e-3], dg_q_grid=[1, 2, 5, 10], dg_ablation_steps=3_000,
    dg_anchor_sizes=[512, 256, 128],
    lm_task="generated", lm_model="minilm", lm_train=256, lm_test=256, lm_last_layers=0, lm_batch=32,
    lm_mezo_steps=6_000, lm_mezo_lr=1e-3, lm_svrg_steps=1_800, lm_svrg_lrs=[1e-2, 1e-3], lm_fo_steps=1_000,
    lm_fo_lr=0.03, lm_eval_every=40, lm_anneal=False, lm_n_seeds=3,
    mem_model="minilm", mem_batch=32, mem_seq=128,
    cos_dims=[100, 1000, 4000], cos_q=[1, 4, 16], cos_draws=4_000,
)

# The thesis: DistilBERT / RoBERTa-large (full and partial FT) and GPT2-XL / OPT-2.7B / OPT-6.7B on 512 / 256 / 256
# examples of MNLI, QNLI, SST-2, CoLA, BoolQ; MeZO bs 64, lr 1e-6 ... 1e-4, mu 1e-3, 32K-400K steps; MeZO-SVRG bs 64,
# eta_1 1e-3 ... 1e-5, eta_2 1e-5 / 1e-6, q 2, 8K-80K steps, Alg. 6 with kappa 1.05, alpha 5; memory at cl 128,
# bs 16/32/64 on an A100.  Models and data from local folders (``lm_model`` a Hugging Face folder, ``lm_task`` two
# GLUE tsv files); needs a GPU.  Expected (thesis, Table 3.12, DistilBERT SST-2 partial FT): MeZO 51% (loss 0.70),
# MeZO-SVRG 74% (0.10), FO-SGD 85% (0.05); memory (Table 3.3, RoBERTa-large, bs 64): MeZO 2.51 GB, MeZO-SVRG 4.72,
# FO-SGD 18.55, FO-Adam 22.41.
FULL = dict(
    mc_draws=100_000, bias_draws=10_000, mu_grid=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
    ls_n_seeds=3, ls_budget_mezo=20_000_000, ls_budget_svrg=20_000_000, ls_fo_steps=50_000, ls_theory_steps=16_000,
    ls_theory_batches=[8, 32, 128],
    dataset="digits", dg_train=512, dg_n_seeds=5, dg_bs_batches=[8, 32, 64, 128], dg_bs_steps=20_000, dg_lr=3e-3,
    dg_budget=10_000_000, dg_mezo_lr=1e-3, dg_svrg_lrs=[1e-2, 1e-3], dg_fo_steps=2_000,
    dg_mu_grid=[1.0, 0.5, 1e-1, 1e-2, 1e-3], dg_q_grid=[1, 2, 5, 10], dg_ablation_steps=3_500,
    dg_anchor_sizes=[512, 256, 128],
    lm_task=("data/SST-2/train.tsv", "data/SST-2/dev.tsv"), lm_model="models/distilbert-base-cased",
    lm_train=512, lm_test=256, lm_last_layers=1, lm_batch=64,
    lm_mezo_steps=200_000, lm_mezo_lr=1e-5, lm_svrg_steps=50_000, lm_svrg_lrs=[1e-4, 1e-6], lm_fo_steps=1_000,
    lm_fo_lr=1e-3, lm_eval_every=1_000, lm_anneal=True, lm_n_seeds=3,
    mem_model="models/roberta-large", mem_batch=64, mem_seq=128,
    cos_dims=[100, 1000, 10_000], cos_q=[1, 4, 16, 64], cos_draws=10_000,
)
