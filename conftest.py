"""pytest's root configuration: every notebook that pytest runs (nbval) runs at smoke scale.

nbval starts each notebook's kernel from this process, so the kernels inherit these variables; the chapters'
parameters cell reads EFFCOURSE_SCALE.
"""

import os

os.environ["EFFCOURSE_SCALE"] = "smoke"
os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Single-threaded kernels make the smoke metrics bit-for-bit repeatable (the baselines were recorded so) and keep
# nbval and papermill kernels from competing for the two cores.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["EFFCOURSE_THREADS"] = "1"  # what the chapter executions (effcourse.book.notebooks.execute) pass on
