"""The paper's networks, one module per box of its figures (Sec. 3.1–3.2), sizes from ``params.yaml``."""
