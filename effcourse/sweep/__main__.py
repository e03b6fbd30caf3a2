import os
import sys

from .cli import main

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.exit(main())
