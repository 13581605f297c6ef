"""Where the pipeline's files live: each path that dvc.yaml names, written once, relative to the repository root.

DVC runs every stage from the repository root, and these relative paths are what its stages read and write.
The stage scripts take them as their argparse defaults, so ``python -m stages.X`` run by hand reads and writes
what ``dvc repro`` does; the rest of the code (``eat generate``, benchmarks, the report, orchestration) reads them
from here instead of repeating the strings. tests/test_paths.py checks that dvc.yaml passes and declares the same
paths. What is inside each file: eat/schema.py.
"""

from __future__ import annotations

from pathlib import Path

DATA, MODELS, REPORTS, CONFIGS = Path("data"), Path("models"), Path("reports"), Path("configs")

# Profiles merged into params.yaml (configs/<name>.yaml) and the bands of `make verify`.
PAPER_PROFILE = CONFIGS / "paper.yaml"         # the official network sizes and recipe
VERIFY_CONFIG = CONFIGS / "verify.yaml"

# synth: the embedded synthetic MEAD / LRW / VoxCeleb2 miniature.
SYNTH = DATA / "synth"
SYNTH_REPORTS = REPORTS / "synth"
SYNTH_SUMMARY = SYNTH_REPORTS / "summary.json"

# ingest, normalise, crop_align, pose (dvc.yaml passes their folders) and preprocess_report.
INTERIM = DATA / "interim"
MANIFEST = INTERIM / "manifest.parquet"
NORMALISED_TABLE = INTERIM / "normalised.parquet"
FEATURES = DATA / "features"
POSE_TABLE = FEATURES / "pose.parquet"
PREPROCESS_REPORTS = REPORTS / "preprocess"

# train_speech_recognizer and audio_features.
SPEECH_RECOGNIZER = MODELS / "speech_recognizer"
SPEECH_RECOGNIZER_MODEL = SPEECH_RECOGNIZER / "model.pt"
SPEECH_RECOGNIZER_METRICS = REPORTS / "speech_recognizer" / "metrics.json"
AUDIO_FEATURES = FEATURES / "audio"
AUDIO_TABLE = FEATURES / "audio.parquet"
AUDIO_QUARANTINE = FEATURES / "audio_quarantine.parquet"
AUDIO_SUMMARY = REPORTS / "audio_features" / "summary.json"

# The supervision networks: train_sync_expert and train_emotion_classifier.
SYNC_EXPERT = MODELS / "sync_expert"
SYNC_EXPERT_MODEL = SYNC_EXPERT / "model.pt"
SYNC_EXPERT_METRICS = REPORTS / "sync_expert" / "metrics.json"
EMOTION_CLASSIFIER = MODELS / "emotion_classifier"
EMOTION_CLASSIFIER_MODEL = EMOTION_CLASSIFIER / "model.pt"
EMOTION_CLASSIFIER_METRICS = REPORTS / "emotion_classifier" / "metrics.json"

# train_latent@osfv|enhanced (dvc.yaml passes their folders), extract_latent and fit_pca.
LATENT_MODEL = MODELS / "latent" / "enhanced" / "model.pt"    # the variant everything downstream uses
LATENT_FEATURES = FEATURES / "latent"
LATENT_TABLE = FEATURES / "latent.parquet"
PCA = MODELS / "pca"                                           # U_mead.npy, mean_mead.npy
PCA_REPORTS = REPORTS / "pca"

# train_a2et@latent|full (dvc.yaml passes their folders) and train_adaptation.
A2ET_MODEL = MODELS / "a2et" / "full" / "model.pt"            # the pretrained A2ET the adaptation starts from
ADAPTATION = MODELS / "adaptation"                            # <variant>/model.pt, snapshots.pt
ADAPTATION_CHECKPOINTS = MODELS / "adaptation_checkpoints"
ADAPTATION_REPORTS = REPORTS / "adaptation"
EAT_MODEL = ADAPTATION / "eat" / "model.pt"                   # the paper's model: variant eat

# evaluate, emotion_control, report and the user study.
BASELINES = DATA / "baselines"                                # <method>/<uid>.mp4, supplied by the user
EVALUATE = REPORTS / "evaluate"
EMOTION_CONTROL_STRIP = REPORTS / "emotion_control" / "interpolation.png"
EMOTION_CONTROL_METRICS = REPORTS / "emotion_control" / "metrics.json"
USER_STUDY = REPORTS / "user_study"
USER_STUDY_RATINGS = USER_STUDY / "ratings"                   # the raters' ratings_*.json, collected by hand
USER_STUDY_KEY = USER_STUDY / "key.json"

# Outside dvc.yaml: `make bench`, `make repro`'s stage timings, `make seeds`, `eat import-official`.
BENCH = REPORTS / "bench"
TIMINGS = REPORTS / "timings.json"
SEEDS = REPORTS / "seeds"
OFFICIAL_MODELS = MODELS / "official"
