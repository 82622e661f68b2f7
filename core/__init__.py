"""PhotoLore core: everything except the UI. Never imports streamlit.

Heavy libraries (torch, chromadb, open_clip) are imported inside the functions that need them,
so `python -m core --help` stays instant.
"""

import os

# OpenMP worker threads (torch, MKL) busy-wait between operations by default. On a small or busy
# machine they then steal the cores that decoding, Chroma and the other model need: EfficientNet
# ran 2-4x slower with the default policy on 2 loaded cores (see bench/bench_ingest.py). It must be
# set before torch is first imported, which `core` always is; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
