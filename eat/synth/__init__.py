"""Synthetic data: speech, visemes and faces for the miniature MEAD / LRW / VoxCeleb2 datasets."""
