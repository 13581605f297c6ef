"""The one registry of third-party pretrained weights: file names, checksums, and where to put them.

Nothing is downloaded at run time. Each entry names the file a user places in the
weights folder (``$EAT_WEIGHTS_DIR``, default ``weights/`` in the repository); its
SHA-256 is checked (in full where known, else the prefix that the upstream file name
itself carries, as torch.hub does; an empty prefix means upstream publishes none and the file
is used unchecked). A missing or wrong file is a :class:`WeightsError`
that says which file, where to put it and where it comes from. Stages without the
file use their labelled substitute instead, and say so in their reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eat.io.hashing import file_sha256

REPO = Path(__file__).resolve().parent.parent


class WeightsError(FileNotFoundError):
    """A pretrained weights file is missing or does not match its checksum."""


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    filename: str
    sha256_prefix: str      # full hash or the prefix in the upstream file name
    source: str             # where a user obtains the file
    used_by: str


REGISTRY: dict[str, WeightsEntry] = {e.name: e for e in (
    WeightsEntry("fan_2d", "2DFAN4-cd938726ad.zip", "cd938726ad",
                 "face-alignment 1.x release asset 2DFAN4 (torch.hub checkpoint)", "crop_align backend 'fan'"),
    WeightsEntry("s3fd", "s3fd-619a316812.pth", "619a316812",
                 "face-alignment 1.x release asset s3fd face detector", "crop_align backend 'fan'"),
    WeightsEntry("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d",
                 "torchvision ImageNet VGG19 (IMAGENET1K_V1) checkpoint", "train_latent perceptual loss"),
    WeightsEntry("syncnet_v2", "syncnet_v2.model", "",
                 "syncnet_python release (data/syncnet_v2.model)", "Sync metric (eat.sync.syncnet_v2)"),
    # Emotion-FAN (ResNet-18, self + relation attention) fine-tuned on MEAD by the EAT authors: the file
    # evaluation_eat's emotion test loads (code/model_training_name/, from its code.zip bundle); a torch
    # checkpoint {"epoch", "state_dict" (DataParallel "module." keys), "accuracy", "name"}, 8 classes in
    # Emotion-FAN's MEAD order (eat.emotion.emotion_fan.FAN_MEAD_ORDER). The name carries epoch 61 and
    # accuracy 84.3655 %, which is the paper's ground-truth Acc_emo on MEAD (84.37, Table 1).
    WeightsEntry("emotion_fan", "self_relation-attention_61_84.3655", "",
                 "EAT evaluation bundle (yuangan/evaluation_eat code.zip: model_training_name/"
                 "self_relation-attention_61_84.3655)", "Acc_emo classifier (eat.emotion.emotion_fan)"),
    # FID's InceptionV3 (TF 2015-12-05 graph ported by pytorch-fid; its FID_WEIGHTS_URL release asset).
    WeightsEntry("inception_fid", "pt_inception-2015-12-05-6726825d.pth", "6726825d",
                 "pytorch-fid release asset fid_weights/pt_inception-2015-12-05-6726825d.pth", "FID (metrics.fid)"),
    # OpenAI CLIP ViT-B/32 (the model the official EAT edits with): the TorchScript archive openai/CLIP's
    # clip.load("ViT-B/32") caches as ~/.cache/clip/ViT-B-32.pt, open_clip's "ViT-B-32"/"openai". The full
    # SHA-256 is the path segment of its URL, which openai/CLIP checks after download.
    WeightsEntry("clip_vit_b32", "ViT-B-32.pt",
                 "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
                 "https://openaipublic.azureedge.net/clip/models/"
                 "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
                 "zero-shot text editing (eat.adapt.clip_edit)"),
)}


def weights_dir() -> Path:
    return Path(os.environ.get("EAT_WEIGHTS_DIR", REPO / "weights"))


def shown_path(path: Path | str) -> str:
    """``path`` as messages and metrics show it: relative to the repository when inside it, so that a run's
    metrics read the same on every machine and clone; absolute (as given) elsewhere."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def resolve(name: str, folder: Path | str | None = None) -> Path:
    """Path of weights ``name`` after checking it; raises :class:`WeightsError` with the fix."""
    entry = REGISTRY[name]
    base = Path(folder) if folder else weights_dir()
    path = base / entry.filename
    if not path.is_file():
        raise WeightsError(f"weights '{name}' ({entry.used_by}) not found: put {entry.filename} in {shown_path(base)}/ "
                           f"(from: {entry.source}), or set EAT_WEIGHTS_DIR")
    if not entry.sha256_prefix:      # upstream publishes no checksum: the file is used unchecked
        return path
    digest = file_sha256(path)
    if not digest.startswith(entry.sha256_prefix):
        raise WeightsError(f"weights '{name}': {shown_path(path)} has SHA-256 {digest[:16]}…, expected "
                           f"{entry.sha256_prefix}…; the file is corrupt or a different release")
    return path
