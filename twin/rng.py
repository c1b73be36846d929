"""Per-component random generators derived from the run's seed (DESIGN.md §3).

Each component draws from its own child of ``SeedSequence(seed)``, keyed by a hash of its
stable id rather than by creation order, so adding one meter changes no other stream.
"""

from __future__ import annotations

import hashlib

import numpy as np


def component_rng(seed: int, component_id: str) -> np.random.Generator:
    """A PCG64 generator for ``component_id`` (e.g. ``"meter/pv-00003/schedule"``)."""
    digest = hashlib.blake2b(component_id.encode("utf-8"), digest_size=16).digest()
    key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
