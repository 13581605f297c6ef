"""Whole clips the pipeline wrote itself (normalised and aligned mp4s), decoded into memory with decord."""

from __future__ import annotations

from pathlib import Path

import cv2
import decord
import numpy as np


def read_frames(path: Path | str, size: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB: every frame of ``path``, area-downscaled to ``size``² when given and different.

    decord with one decoding thread: the fast whole-clip reader for the upright, bit-exact mp4s that the
    normalise and crop_align stages write, shared by every stage that loads such clips into memory.
    :func:`eat.io.media.read_video` is the reader for any other file (it applies a stream's rotation and reads
    frame sizes decord fails on).
    """
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    first = reader.next().asnumpy()
    frames = np.empty((len(reader), *first.shape), np.uint8)
    frames[0] = first
    for i in range(1, len(frames)):     # in order: half of get_batch's time (0.6 vs 1.1 ms per 640×360 frame)
        frames[i] = reader.next().asnumpy()
    if size is None or frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def read_aligned_frames(arrays: Path | str, size: int) -> np.ndarray:
    """(T, size, size, 3) uint8 RGB: the aligned frames at the models' size, stored by crop_align in ``<uid>.npz``.

    Raises ``ValueError`` naming the file when they were written at another size (``signal.image_size`` changed
    since crop_align ran) or not at all."""
    with np.load(arrays) as stored:
        return _checked_frames(stored, arrays, size)


def read_aligned(arrays: Path | str, size: int, aligned_size: int) -> tuple[np.ndarray, np.ndarray]:
    """From one opening of ``<uid>.npz``: the aligned frames (T, size, size, 3) uint8 RGB (checked as by
    :func:`read_aligned_frames`) and their (T, 68, 2) float32 landmarks, stored in pixels of the
    ``aligned_size``² crop (``crop_align.size``) and returned in pixels of the ``size``² frames."""
    with np.load(arrays) as stored:
        frames = _checked_frames(stored, arrays, size)
        landmarks = (stored["landmarks"] * (size / aligned_size)).astype(np.float32)
    return frames, landmarks


def _checked_frames(stored: np.lib.npyio.NpzFile, arrays: Path | str, size: int) -> np.ndarray:
    if "frames" not in stored.files:
        raise ValueError(f"{arrays}: no frames; it was written by an older crop_align: re-run crop_align")
    frames = stored["frames"]
    if frames.shape[1:3] != (size, size):
        raise ValueError(f"{arrays}: frames are {frames.shape[2]}x{frames.shape[1]}, the models need {size}x{size} "
                         f"(signal.image_size): re-run crop_align")
    return frames
