"""pytest's root configuration: every notebook that pytest runs (nbval) runs at smoke scale.

nbval starts each notebook's kernel from this process, so the kernels inherit these variables; the chapters'
parameters cell reads EFFCOURSE_SCALE.
"""

import os

os.environ["EFFCOURSE_SCALE"] = "smoke"
os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
