"""stressdeck: a terminal console for load and stress testing HTTP backends."""

import os

# numpy's BLAS keeps a pool of threads that spin after each call: they burned about half a
# core of an idle run, stole it from the event loop and made the generator look saturated.
# Our numpy work (percentiles, buckets) is tiny and single-threaded anyway.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
