"""Chapter 2 (MeZO-SVRG) at three scales.  ``full`` is the thesis's protocol (Gautam 2024, Secs. 3.4, 3.11-3.16).

Queries are single-sample forward passes everywhere (MeZO 2b per step, a MeZO-SVRG anchor step 2n, a minibatch
step 4b).  Least squares and digits run their seeds side by side (``effcourse.mezo.batched``); ``*_n_seeds`` are
counts: the chapter draws the seeds themselves from its base ``SEED`` (``run.seeds``), so no seed is fixed here.
``dataset`` is the data set of the small network (through ``effcourse.core.data.dataset``).
"""

from ..core.config import Deviation

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
    # Fig. 3.1b's data set and grid where the sweep runs it (full only; the book runs section 6 on `dataset`)
    mn_dataset="digits", mn_lrs=[3e-3], mn_fo_lr=0.1, mn_eval_every=10, mn_checkpoint_every=1_000,
    # transformer fine-tuning
    lm_task="generated", lm_model="tiny-bert", lm_train=64, lm_test=64, lm_last_layers=0, lm_batch=16,
    lm_mezo_steps=200, lm_mezo_lr=1e-3, lm_svrg_steps=60, lm_svrg_lrs=[1e-2, 1e-3], lm_fo_steps=50, lm_fo_lr=0.03,
    lm_eval_every=10, lm_anneal=False, lm_n_seeds=2,
    lm_models={"tiny-bert": {}}, lm_modes=["head"], lm_checkpoint_every=1_000,
    # memory (one fresh process per method), in two regimes: activations dominate at `mem_batch` (Table 3.3's
    # regime), the weights dominate at `mem_weights_batch`
    mem_model="mlp", mem_batch=4096, mem_seq=32, mem_batches=[4096], mem_weights_batch=1, mem_steps=2,
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
    mn_dataset="digits", mn_lrs=[3e-3], mn_fo_lr=0.1, mn_eval_every=40, mn_checkpoint_every=1_000,
    lm_task="generated", lm_model="minilm", lm_train=256, lm_test=256, lm_last_layers=0, lm_batch=32,
    lm_mezo_steps=6_000, lm_mezo_lr=1e-3, lm_svrg_steps=1_800, lm_svrg_lrs=[1e-2, 1e-3], lm_fo_steps=1_000,
    lm_fo_lr=0.03, lm_eval_every=40, lm_anneal=False, lm_n_seeds=3,
    lm_models={"minilm": {}}, lm_modes=["head"], lm_checkpoint_every=1_000,
    mem_model="minilm", mem_batch=32, mem_seq=128, mem_batches=[32], mem_weights_batch=1, mem_steps=2,
    cos_dims=[100, 1000, 4000], cos_q=[1, 4, 16], cos_draws=4_000,
)

# The thesis's protocol (Gautam 2024, Secs. 3.9-3.16), run as a resumable sweep (`effcourse/mezo/sweep.py`:
# `python -m effcourse.sweep run 02-mezo-svrg --out results`); the notebook at `full` reads its results.
# * Fig. 3.1b (Table 3.5): the 25,818-parameter MLP (hidden 32, 16) on MNIST (`mn_dataset`, IDX files under
#   $EFFCOURSE_DATA/mnist), MeZO at b in {32, 64, 128} x lr in {1e-3, 1e-4}, mu 1e-3, FO-SGD at b 64, lr 1e-3;
#   expected: MeZO unstable at the smaller batches (a figure, no numbers).
# * Tables 3.1 / 3.12 / 3.14 (FP32, SST-2, 512 train / 256 test examples, batch 64): DistilBERT (Table 3.11's grid:
#   MeZO 200K steps, MeZO-SVRG 50K, FO-SGD 1K) and RoBERTa-large (Table 3.13's: 96K / 24K / 1K), each with partial
#   (DistilBERT layer 5 + classifier, RoBERTa-large layers 20-23 + classifier) and full-parameter fine-tuning
#   (`lm_modes`).  Expected test accuracy % (fine-tuning loss), MeZO / MeZO-SVRG / FO-SGD:
#   DistilBERT partial 51 (0.70) / 74 (0.10) / 85 (0.05); full 52 (0.68) / 72 (0.02) / 88 (0.01);
#   RoBERTa-large partial 54 (0.68) / 72 (0.59) / 89 (0.58); full 56 (0.69) / 84 (0.13) / 96 (0.11).
# * Table 3.3 (RoBERTa-large, FP32, cl 128, bs 16 / 32 / 64), GB: MeZO 2.07 / 2.21 / 2.51, MeZO-SVRG 4.36 / 4.51 /
#   4.72, FO-SGD 6.74 / 10.67 / 18.55, FO-Adam 10.44 / 14.33 / 22.41.
# Where the OCR lost the selected rate of a grid, the choice is stated in DEVIATIONS.  Least squares, the digits
# comparison and ablations, and the math checks stay inline (minutes on one GPU).
FULL = dict(
    mc_draws=100_000, bias_draws=10_000, mu_grid=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
    ls_n_seeds=3, ls_budget_mezo=20_000_000, ls_budget_svrg=20_000_000, ls_fo_steps=50_000, ls_theory_steps=16_000,
    ls_theory_batches=[8, 32, 128],
    dataset="digits", dg_train=512, dg_n_seeds=5, dg_bs_batches=[32, 64, 128], dg_bs_steps=20_000, dg_lr=1e-3,
    dg_budget=10_000_000, dg_mezo_lr=1e-3, dg_svrg_lrs=[1e-2, 1e-3], dg_fo_steps=2_000,
    dg_mu_grid=[1.0, 0.5, 1e-1, 1e-2, 1e-3], dg_q_grid=[1, 2, 5, 10], dg_ablation_steps=3_500,
    dg_anchor_sizes=[512, 256, 128],
    mn_dataset="mnist", mn_lrs=[1e-3, 1e-4], mn_fo_lr=1e-3, mn_eval_every=200, mn_checkpoint_every=2_000,
    lm_task=("glue/SST-2/train.tsv", "glue/SST-2/dev.tsv"), lm_model="models/distilbert-base-cased",
    lm_train=512, lm_test=256, lm_last_layers=1, lm_batch=64,
    lm_mezo_steps=200_000, lm_mezo_lr=1e-5, lm_svrg_steps=50_000, lm_svrg_lrs=[1e-4, 1e-6], lm_fo_steps=1_000,
    lm_fo_lr=1e-3, lm_eval_every=1_000, lm_anneal=True, lm_n_seeds=3,
    lm_models={"distilbert": {},
               "roberta-large": dict(model="models/roberta-large", last_layers=4, mezo_steps=96_000, mezo_lr=1e-6,
                                     svrg_steps=24_000, svrg_lrs=[1e-4, 1e-6], fo_steps=1_000, fo_lr=1e-4)},
    lm_modes=["partial", "full"], lm_checkpoint_every=2_000,
    mem_model="models/roberta-large", mem_batch=64, mem_seq=128, mem_batches=[16, 32, 64], mem_weights_batch=1,
    mem_steps=100,
    cos_dims=[100, 1000, 10_000], cos_q=[1, 4, 16, 64], cos_draws=10_000,
)

DEVIATIONS = (
    Deviation("least-squares problem",
              thesis="d = 100, n = 1000 with Table 3.7's rates; the distributions of X and w, the noise, sum or mean, "
                     "the start and the run length unspecified (Fig. 3.1a).",
              here="Standard normal X and w*, noise 0.1, the mean squared residual, w_0 = 0, 1e7 queries per ZO method "
                   "(2e7 at full) and 20,000 FO-SGD steps (50,000 at full), three seeds.",
              why="Unspecified; with the sum instead of the mean, lr 1e-3 diverges."),
    Deviation("small network",
              thesis="Fig. 3.1b: an MLP with hidden sizes 32 and 16 on MNIST (25K parameters), MeZO at lr 1e-3 or 1e-4 "
                     "and batch 32, 64 or 128.",
              here="The same hidden sizes on the bundled 8x8 digits (2,778 parameters, 512 training images, at every "
                   "scale), MeZO at lr 3e-3 and batches 8 to 128 for 10,000 steps (20,000 at full), three seeds "
                   "(five at full).",
              why="No downloads and a CPU budget; whether MeZO is unstable at the thesis's own rates is tested only at "
                  "full, where the sweep runs the thesis's network on MNIST at its grid (b 32 / 64 / 128, lr 1e-3 / "
                  "1e-4, 20,000 steps, all 60,000 training images: steps and training set unspecified)."),
    Deviation("transformer and task",
              thesis="DistilBERT and RoBERTa-large, full and partial fine-tuning, on 512 training and 256 test "
                     "examples of MNLI, QNLI, SST-2 and CoLA.",
              here="Book: all-MiniLM-L6-v2 (a PyPI package) with a fresh head, only the pooler and head trained (148K "
                   "parameters), on a generated sentiment task with negation and but-clauses, 256 training and 256 "
                   "test sentences; full: DistilBERT and RoBERTa-large, partial (last 1 / 4 layers and classifier) and "
                   "full fine-tuning, on 512 and 256 examples of SST-2 from local tsv files.",
              why="Offline CPU; in a trial, a few hundred ZO steps on MiniLM's last layer (1.9M parameters) moved the "
                  "loss by under 1%.  Full covers SST-2 only, the one GLUE task the sweep's data layout holds."),
    Deviation("fine-tuning budget and rates",
              thesis="Batch 64; MeZO 200K steps, MeZO-SVRG 50K steps (q = 2), FO-SGD 1K steps; rates from grids whose "
                     "selected values are mostly lost in the OCR; single runs.",
              here="Book: batch 32, MeZO 6,000 steps at lr 1e-3, MeZO-SVRG 1,800 steps at (1e-2, 1e-3), FO-SGD 1,000 "
                   "steps at 0.03, three seeds (FO-SGD at the first only); full: batch 64, 200K / 50K / 1K steps at "
                   "1e-5, (1e-4, 1e-6) and 1e-3 for DistilBERT; 96K / 24K / 1K steps at 1e-6, (1e-4, 1e-6) and 1e-4 "
                   "for RoBERTa-large (Table 3.13's grid, its selected values lost); three seeds, FO-SGD at the first.",
              why="CPU budget; the book's rates come from a one-seed grid, the full ones from the thesis's grids "
                  "(eta_1, eta_2 as in Figs. 3.4b and 3.5b; for RoBERTa-large MeZO the grid's smallest rate, as MeZO's "
                  "own RoBERTa-large runs use)."),
    Deviation("shared direction and Theorem 4",
              thesis="Alg. 3 does not say whether its two minibatch estimates share one z; Theorem 4 bounds the "
                     "gradient norm by O(d/T + 1(b<n)/b) with slips (A1's square, a step not divided by d, the last "
                     "iterate for a random one) and no constants.",
              here="One shared z by default (independent as an option); section 5 runs both on least squares at "
                   "eta_1 = eta_2 = 1e-3, q = 2, and tests only the floor's shape in b, not the rate.",
              why="Unspecified: the lemmas condition on one z while the public code draws two, and the printed "
                  "theorem cannot be checked as stated."),
    Deviation("cost accounting",
              thesis="Counts queries inconsistently across tables (the FP32 tables charge 512 per MeZO-SVRG step, 25% "
                     "low) and compares GPU-hours to MeZO's peak accuracy (Table 3.4).",
              here="Every method is charged single-sample forward passes (MeZO 2b a step, a MeZO-SVRG anchor 2n, a "
                   "minibatch step 4b); the Table 3.4 claim counts batched forward passes to MeZO's best fine-tuning "
                   "loss, with wall time shown only.",
              why="An erratum in the thesis's accounting; wall time depends on the machine and its load."),
    Deviation("learning-rate annealing (Alg. 6)",
              thesis="Used in every language-model run with kappa 1.05 and alpha 5; which losses feed it and how often "
                     "it fires are unspecified (the public code adds rate floors).",
              here="Off at book scale; on at full, fed minibatch losses and checked once per epoch, without floors.",
              why="In a trial at book scale it fired on minibatch noise and annealed a run to a standstill."),
    Deviation("ablations",
              thesis="mu in {1, 0.5, 0.1, 0.01} and q in {1, 2, 5, 10} on DistilBERT and MNLI at (1e-4, 1e-6) (Figs. "
                     "3.4b, 3.5b); anchors of 256 and 128 of 512 on DistilBERT in BF16 (Table 3.10).",
              here="The digits network at (1e-2, 1e-3) and batch 64, 3,000 iterations (3,500 at full): mu adds 1e-3, q "
                   "1 to 10, fresh anchors of 256 and 128 of 512.",
              why="No pretrained model or GLUE data offline, and a CPU budget."),
    Deviation("memory",
              thesis="RoBERTa-large in FP32 on an A100, nvidia-smi peak after at least 100 MNLI steps, batch 16 to 64 "
                     "and context 128 to 512 (Table 3.3).",
              here="Book: MiniLM at batch 32 and sequence 128 on random token ids, two steps per method in a fresh "
                   "process, peak resident memory above the libraries (CUDA peak allocation on a GPU); full: "
                   "RoBERTa-large at batch 16, 32 and 64, sequence 128, 100 steps, CUDA peak allocation (not "
                   "nvidia-smi: the CUDA context and the allocator's cache are not counted).",
              why="Offline CPU; a peak counter never goes down, so each method needs its own process."),
    Deviation("not reproduced",
              thesis="GPT2-XL, OPT-2.7B and OPT-6.7B (Table 3.2, Fig. 3.3), BF16 runs (Tables 3.19-3.25), prompted "
                     "runs (Table 3.15 and Fig. 3.1c, which uses MeZO's prompts), the context-length columns of Table "
                     "3.3 and tasks other than SST-2.",
              here="Not configured at any scale; the chapter quotes Tables 3.1, 3.2 and 3.4 for comparison.",
              why="They need more pretrained weights, GLUE and SuperGLUE data and GPU time; full covers DistilBERT "
                  "and RoBERTa-large on SST-2 (Tables 3.1, 3.12, 3.14) without prompts."),
)
