"""Face Mesh → iBUG-68 mapping: the one-gather form equals each point's mean of its mesh vertices."""

from __future__ import annotations

import numpy as np

from eat.preprocess.landmarks import MEDIAPIPE_TO_IBUG68, mesh_to_ibug68


def test_every_ibug_point_is_the_mean_of_its_mesh_vertices_bit_for_bit():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mesh = (rng.random((468, 2)) * [640, 360]).astype(np.float32)
        expected = np.stack([mesh[list(idx)].mean(axis=0) for idx in MEDIAPIPE_TO_IBUG68])
        got = mesh_to_ibug68(mesh)
        assert got.dtype == np.float32 and got.shape == (68, 2)
        np.testing.assert_array_equal(got, expected)
