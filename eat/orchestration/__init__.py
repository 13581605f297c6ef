"""DVC-side helpers for orchestrating the pipeline (``flows/``): the DAG, stage status, running a stage.

DVC stays the source of truth: it says which stages exist, in which order, and which are
up to date; these helpers only ask it and run ``dvc repro --single-item`` for the rest.
Nothing here imports Prefect, so it is tested without a server.
"""
