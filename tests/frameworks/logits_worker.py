"""Logits of one framework for the canonical weights of a seed, in a process of its own.

    python -m tests.frameworks.logits_worker FRAMEWORK MODEL C H W SEED OUT.npy
"""

import sys

import numpy as np

from tests.frameworks.contract import built


def main(framework, model, c, h, w, seed, out):
    shape = (int(c), int(h), int(w))
    zeros = (np.zeros((4, *shape), np.float32), np.zeros(4, np.int64)) * 2
    backend, _ = built(framework, model, shape, seed=int(seed), data=zeros)
    x = np.random.default_rng(int(seed) + 100).normal(size=(8, *shape)).astype(np.float32)
    np.save(out, backend.logits(x))


if __name__ == "__main__":
    main(*sys.argv[1:])
