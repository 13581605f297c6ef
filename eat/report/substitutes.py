"""What stands in for the paper's data, weights or metrics in this run: each becomes a flag in the caption of
every table or figure it affects. Detected from the run's own files, never assumed."""

from __future__ import annotations

from dataclasses import dataclass

from eat.paths import SYNTH
from eat.report.inputs import RunResults

ALL = frozenset({"T1_MEAD", "T1_LRW", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "F5", "F6", "F12"})
GENERATED = ALL - {"T3", "F6"}
EMOTION = frozenset({"T1_MEAD", "T4", "T5", "T7", "T8", "F5"})
FD_TABLES = frozenset({"T1_MEAD", "T1_LRW", "T4", "T5", "T8"})
SYNC_TABLES = frozenset({"T1_MEAD", "T1_LRW", "T4", "T5", "T6", "T8"})
LANDMARK_TABLES = frozenset({"T1_MEAD", "T1_LRW", "T3", "T4", "T5", "T6", "T7", "T8"})


@dataclass(frozen=True)
class Flag:
    """One substitute: a short ``key`` (used as a footnote mark), the caption ``text``, the tables it affects."""

    key: str
    text: str
    applies: frozenset[str]
    short: str = ""

    @property
    def label(self) -> str:
        return self.short or self.text


def _evaluated_keys(results: RunResults) -> set[str]:
    return {k.split("/", 1)[-1] for loaded in results.evaluate.values() if loaded.ok for k in loaded.data}


def detect(results: RunResults) -> list[Flag]:
    """Every substitute the run's files record, in a fixed order."""
    p, flags = results.params, []
    roots = {k: v for k, v in (p.get("data") or {}).items() if k.endswith("_root")}
    synthetic = sorted(k for k, v in roots.items() if str(SYNTH) in str(v))
    if synthetic:
        flags.append(Flag("synthetic", f"synthetic data: the embedded {SYNTH} miniature, not MEAD / LRW / "
                          f"VoxCeleb2 ({', '.join(synthetic)})", ALL - {"F6"}, "synthetic data"))
    size = (p.get("signal") or {}).get("image_size")
    if size is not None and int(size) != 256:
        flags.append(Flag("profile", f"reduced profile: {size}² frames and small networks, not configs/paper.yaml",
                          ALL - {"F6"}, "reduced profile"))
    if (p.get("crop_align") or {}).get("backend", "mediapipe") == "mediapipe":
        flags.append(Flag("mediapipe", "MediaPipe Face Mesh landmarks (mapped to iBUG-68) instead of FAN",
                          LANDMARK_TABLES, "MediaPipe landmarks"))
    speech = results.side.get("speech_recognizer")
    features = results.side.get("audio_features")
    backend = (features.data or {}).get("speech_backend") if features and features.ok else \
        (p.get("audio_features") or {}).get("speech_backend")
    if (speech and speech.ok and speech.data.get("substitute")) or backend == "ctc":
        what = (speech.data.get("substitute_for") if speech and speech.ok else None) or "DeepSpeech 0.1.0"
        flags.append(Flag("ctc", f"speech features from the pipeline's CTC recogniser instead of {what}", GENERATED,
                          "CTC speech features, not DeepSpeech"))
    if any(loaded.ok and (loaded.data.get("vgg19") or {}).get("substitute") for loaded in results.latent.values()):
        flags.append(Flag("vgg19", "perceptual loss on a randomly initialised VGG19 instead of ImageNet VGG19",
                          ALL - {"F6", "T2"}, "random-init VGG19 loss"))
    latent = [loaded.data for loaded in results.latent.values() if loaded.ok]
    if any("substitute" in str(m.get("headpose_labels", "")) for m in latent):
        flags.append(Flag("headpose_labels", "head-pose estimator supervised by the synthetic data's exact head pose "
                          "instead of a pretrained HopeNet's estimates", ALL - {"F6", "T2"},
                          "exact head-pose labels, not HopeNet"))
    deviations = sorted({key for m in latent for key in (m.get("deviations_from_paper_profile") or {})})
    if deviations:
        flags.append(Flag("latent_recipe", "latent model trained with a small-profile recipe that departs from "
                          f"OSFV's in: {', '.join(deviations)} (values in reports/latent/*/metrics.json)",
                          ALL - {"F6", "T2"}, "small-profile latent recipe"))
    classifier = results.side.get("emotion_classifier")
    if classifier and classifier.ok:
        weights = classifier.data.get("weights") or {}
        if not weights.get("pretrained", False) or weights.get("weights") == "scratch":
            stills = classifier.data.get("still_clips") or 0
            extra = (f" and {stills} still clips of synthetic identities (eat/synth/stills.py) in place of the FER+ "
                     "faces of its pre-training") if stills else ""
            flags.append(Flag("emotion_fan", "Acc_emo from an Emotion-FAN trained from scratch on the run's MEAD "
                              f"train split{extra}, not the official fine-tuned weights", EMOTION,
                              "Emotion-FAN trained from scratch" + (" with synthetic stills" if stills else "")))
    keys = _evaluated_keys(results)
    if "FD_emotion_fan" in keys and "FID" not in keys:
        flags.append(Flag("fd", "FD_emotion_fan: Fréchet distance in Emotion-FAN features instead of FID "
                          "(Inception weights absent); not comparable with the paper's FID", FD_TABLES,
                          "FD_emotion_fan, not FID"))
    if "Sync_expert" in keys and "Sync" not in keys:
        flags.append(Flag("sync_expert", "Sync_expert: confidence of the pipeline-trained lip-sync expert instead "
                          "of SyncNet v2; not comparable with the paper's Sync", SYNC_TABLES,
                          "Sync_expert, not SyncNet"))
    return flags


def for_table(flags: list[Flag], table: str) -> list[Flag]:
    return [f for f in flags if table in f.applies]
