"""numpy baseline for benches/int8.rs: a batch of queries as `Q @ X.T` plus
argpartition (and a sort of the k survivors), the way a numpy user would
write exact top-k.

Started by the bench as a child process, so both run in the same session
on the same data shape and their timings can be interleaved:

    python benches/int8_numpy.py N DIM BATCH K

prints "ready" once X (N x DIM random unit rows, float32) and Q (BATCH x DIM)
exist, then answers each "run" line on stdin with the seconds one batch
took (perf_counter around the matmul and the selection only), and exits on
EOF. numpy's matmul time does not depend on the values, so random data
stands in for every data set of the bench.

The bench removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from this
process's environment only, so OpenBLAS picks its own kernel for this CPU.
"""

import sys
import time

import numpy as np


def unit_rows(rng, n, dim):
    x = rng.uniform(-1.0, 1.0, size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main():
    n, dim, batch, k = (int(a) for a in sys.argv[1:5])
    rng = np.random.default_rng(0x5EED)
    x = unit_rows(rng, n, dim)
    q = unit_rows(rng, batch, dim)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        scores = q @ x.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        ids = np.take_along_axis(part, order, axis=1)
        elapsed = time.perf_counter() - start
        assert ids.shape == (batch, k)
        print(f"{elapsed:.9f}", flush=True)


if __name__ == "__main__":
    main()
