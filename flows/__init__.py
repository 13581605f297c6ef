"""Prefect flows over the DVC pipeline (``python -m flows --help``). Flows orchestrate, never compute."""
