"""Chapter 2 (Gautam 2024, ch. 3): zeroth-order fine-tuning with MeZO and MeZO-SVRG.

* :mod:`.spsa`: the two-point estimators (3.2)-(3.6) and the seeded in-place perturbation (Alg. 5);
* :mod:`.optim`: MeZO, MeZO-SVRG (Alg. 3), naive ZO-SVRG (Alg. 4), Alg. 6, the seed trajectory (Sec. 3.3);
* :mod:`.problems` and :mod:`.batched`: least squares and a small MLP, trained with many seeds side by side;
* :mod:`.text`, :mod:`.pretrained`, :mod:`.finetune`: a sentence task, offline transformers, the fine-tuning loop;
* :mod:`.memory`: peak memory per method in fresh processes (Table 3.3);
* :mod:`.experiments` and :mod:`.figures`: the chapter's experiments and plots.
"""

from .batched import Trace, run_fo_sgd, run_mezo, run_mezo_svrg, svrg_budget
from .finetune import Encoded, FinetuneTrace, finetune
from .optim import ZOSVRG, LossAnnealer, MeZO, MeZOSVRG, QueryCounter, Trajectory, rebuild
from .pretrained import CachedPrefix, load_classifier, trainable_parameters
from .problems import BatchedMLP, LeastSquares, digits_mlp
from .text import WordTokenizer, encode, load_task, sentiment_task

__all__ = [
    "BatchedMLP", "CachedPrefix", "Encoded", "FinetuneTrace", "LeastSquares", "LossAnnealer", "MeZO", "MeZOSVRG",
    "QueryCounter", "Trace", "Trajectory", "WordTokenizer", "ZOSVRG", "digits_mlp", "encode", "finetune",
    "load_classifier", "load_task", "rebuild", "run_fo_sgd", "run_mezo", "run_mezo_svrg", "sentiment_task",
    "svrg_budget", "trainable_parameters",
]
