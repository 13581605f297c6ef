"""Preprocessing: raw MEAD / LRW / VoxCeleb2 folders → frame-aligned per-clip inputs of the models."""
