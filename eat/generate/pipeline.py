"""``eat generate``: one portrait, one speech clip, an emotion → an mp4 with sound (Sec. 3 end to end).

    photo ──prepare_face──▶ aligned source ──D_k, head-pose estimator──▶ K_c, source pose, source latent
    audio ──prepare_audio──▶ 16 kHz ──per chunk: mel, speech logits──▶ A2ET windows (+ pose, pose image)
    emotion mix, seed ──mapper──▶ e0, prompts ──A2ET + EDN──▶ K_i = R_i K_c + T_i + E'_i ──RePos-Net (EAM)──▶ frames
    frames ──(paste back)──▶ H.264 ──mux──▶ AAC + mp4

The audio is processed in chunks of ``chunk_frames`` frames and the frames stream into the encoder, so memory
does not grow with the audio's length. A chunk's A2ET windows need w frames on each side: each chunk's features
and poses are computed for the chunk plus w frames (plus the feature context of :mod:`eat.generate.audio`), so
every window sees the same frames it would see in one pass over the whole clip, and chunked output equals
unchunked output. Keypoints are absolute (the MEAD protocol: predicted expression, not offsets from frame 0).
Keypoints and frames come from :mod:`eat.render_clip` (:func:`~eat.render_clip.predict_keypoints` per chunk, one
:class:`~eat.render_clip.SourceRenderer` per request), the path every other generating stage takes.

:class:`Generator` holds the loaded models (reused across the rows of a batch); :func:`generate` runs one
request and returns the time spent per phase: face prep, audio features, A2ET, rendering, encoding. Long audio
takes minutes: ``progress`` (``eat generate`` passes :func:`frame_bar`) shows a bar of frames with an ETA.

Inputs end in a video or in one error naming the file: the loaders raise their own errors (``FaceError``,
``AudioError``, ``PoseError``, ``MediaError``, all ``ValueError``), and anything else a photo, audio file or
driving video makes a library raise (OpenCV, ffmpeg, MediaPipe) is re-raised as :class:`InputError` with the
file's name.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from eat.a2et.data import A2ETClip, Source
from eat.a2et.pose_image import head_box_images
from eat.adapt.checkpoint import load_emotional_model
from eat.adapt.generate import emotion_codes, latent_code
from eat.config import Params
from eat.features.speech import make_backend
from eat.generate.audio import Audio, feature_params, prepare_audio
from eat.generate.emotion import describe
from eat.generate.face import Face, OnMultiple, PasteBack, prepare_face
from eat.generate.pose import natural_motion, video_pose
from eat.io.atomic import atomic_path
from eat.io.media import run_ffmpeg, write_video
from eat.latent.data import to_tensor
from eat.latent.pca import ExpressionBasis
from eat.latent.train import load_inference_model
from eat.models.a2et import source_keypoint_logits
from eat.models.keypoints import compose_keypoints, rotation_matrix
from eat.paths import EAT_MODEL, PCA, SPEECH_RECOGNIZER_MODEL
from eat.render_clip import Predictor, SourceRenderer, emotional_predictor, predict_keypoints

log = logging.getLogger(__name__)

PHASES = ("face", "audio_features", "a2et", "rendering", "encoding")


class CheckpointError(FileNotFoundError):
    """A model file is missing or does not fit; the message names it and says how to make it."""


class InputError(ValueError):
    """An input file made a library fail in a way its loader does not name; the message names the file."""


@contextmanager
def blame(path: str, what: str) -> Iterator[None]:
    """Re-raise an unexpected failure while reading ``path`` as :class:`InputError` naming it (the loaders' own
    ``ValueError`` s already do)."""
    try:
        yield
    except (ValueError, OSError):
        raise
    except Exception as err:  # noqa: BLE001 — OpenCV, MediaPipe, torch: any of them may choke on an odd input
        detail = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: cannot use this {what} ({type(err).__name__}: {detail})") from err


Progress = Callable[[int, str], Any]     # (frames, label) → a bar with update(n) and close() (tqdm's interface)


def frame_bar(total: int, label: str, leave: bool = True):
    """A tqdm bar over the frames of a clip, with rate and ETA, on stderr (every 0.5 s on a terminal, every 10 s
    into a log file, as the training stages do); ``TQDM_DISABLE=1`` turns it off."""
    return tqdm(total=total, desc=label, unit="frame", mininterval=0.5 if sys.stderr.isatty() else 10,
                dynamic_ncols=True, leave=leave)


class Timer:
    """Seconds per phase (:data:`PHASES`), summed over the chunks of a clip."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def summary(self) -> dict[str, float]:
        return {p: round(self.seconds.get(p, 0.0), 3) for p in PHASES}


@dataclass(frozen=True)
class Request:
    """One video to make. ``pose``: "static", "natural" or a driving video's path."""

    image: str
    audio: str
    output: str
    mix: dict[str, float]
    pose: str = "static"
    seed: int = 0
    paste_back: bool = False
    on_multiple: OnMultiple = "largest"


@dataclass
class Result:
    output: str
    n_frames: int
    audio_seconds: float
    seconds: dict[str, float]
    n_faces: int
    size: tuple[int, int]
    frames: list[np.ndarray] = field(default_factory=list, repr=False)   # kept only when asked (tests, figures)

    @property
    def frames_per_second(self) -> float:
        return self.n_frames / max(sum(self.seconds.values()), 1e-9)


def checkpoint_params(params: Params, saved: dict) -> Params:
    """``params`` with the model sections the checkpoint was built with (its ``config``), so a model file from
    any profile (or converted from the official weights) loads without editing params.yaml."""
    update = {k: type(getattr(params, k)).model_validate(v) for k, v in saved.get("config", {}).items()
              if hasattr(params, k)}
    return params.model_copy(update=update)


class Generator:
    """The adapted model (``model.pt`` of ``train_adaptation`` or of ``eat import-official``), the latent model's
    keypoint detector and head-pose estimator, the PCA basis and the speech recogniser, loaded once."""

    def __init__(self, params: Params, checkpoint: Path | str = EAT_MODEL, pca_dir: Path | str | None = None,
                 recognizer: Path | str = SPEECH_RECOGNIZER_MODEL, device: str | torch.device | None = None,
                 chunk_frames: int = 500, batch_size: int = 8):
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise CheckpointError(f"{checkpoint}: adapted model not found; train it (`dvc repro "
                                  f"train_adaptation@eat`) or convert the official weights (`eat import-official`)")
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        pretrained = saved.get("pretrained", {})
        for what in ("latent_model", "a2et_model"):
            if not Path(pretrained.get(what, "")).is_file():
                raise CheckpointError(f"{checkpoint} sits on the {what.replace('_', ' ')} "
                                      f"{pretrained.get(what)!r}, which is missing (run from the project root, or "
                                      "re-run the stage / the import that wrote it)")
        self.params = checkpoint_params(params, saved)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        pca_dir = pca_dir or pretrained.get("pca_dir") or PCA
        self.basis = ExpressionBasis.load(pca_dir, self.params.latent.pca_components)
        self.model = load_emotional_model(checkpoint, self.params, self.basis).to(self.device)
        nets = load_inference_model(pretrained["latent_model"], self.device)
        del nets.generator, nets.discriminator     # the adapted model has its own RePos-Net
        self.nets = nets
        self.features = feature_params(self.params)
        self.backend = make_backend(self.features, recognizer)
        if "official" in pretrained and self.backend.name != "deepspeech":
            log.warning("%s: official EAT weights expect DeepSpeech 0.1.0 speech features; with the %r substitute "
                        "recogniser lip sync degrades (set audio_features.speech_backend: deepspeech)", checkpoint,
                        self.backend.name)
        self.half = self.params.signal.window_frames // 2
        self.chunk_frames, self.batch_size = chunk_frames, batch_size
        self.checkpoint = str(checkpoint)

    # -- per clip ------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def source(self, face: Face) -> tuple[Source, np.ndarray]:
        """The source latent of the aligned face and its own head pose (6,)."""
        x = to_tensor(face.frame[None]).to(self.device)
        canonical = self.nets.kp_detector(x)
        head = self.nets.he_estimator(x)
        rotation, translation, expression = head.transform()
        keypoints = compose_keypoints(canonical, rotation, translation, expression)
        logits = source_keypoint_logits(self.nets.kp_detector, x)
        pe = self.basis.encode(expression.cpu().numpy())
        pose = torch.cat([torch.stack(head.degrees(), -1), translation], -1)[0].float().cpu().numpy()
        return Source(face.frame, logits[0].cpu().numpy(), canonical[0].cpu().numpy(),
                      keypoints[0].cpu().numpy(), pe[0]), pose

    def pose_track(self, request: Request, own: np.ndarray, n_frames: int):
        """A function (start, stop) → (stop − start, 6) poses of frames [start, stop) (eat.generate.pose)."""
        if request.pose == "static":
            return lambda a, b: np.repeat(own[None], b - a, axis=0)
        if request.pose == "natural":
            return lambda a, b: own[None] + natural_motion(a, b, self.params.signal.fps, request.seed)
        track = video_pose(request.pose, self.nets, self.params, n_frames)
        return lambda a, b: track[a:b]

    def chunk_clip(self, audio: Audio, source: Source, poses, start: int, stop: int, label: str) -> A2ETClip:
        """An :class:`A2ETClip` of frames [start, stop) (targets zero: generation only)."""
        feats = audio.features(start, stop, self.features, self.backend)
        pose = poses(start, stop).astype(np.float32)
        n, k = stop - start, len(source.canonical)
        rotation = rotation_matrix(*torch.from_numpy(pose[:, :3]).unbind(-1)).numpy()
        return A2ETClip(uid=Path(audio.path).stem, dataset="user", emotion=label, mel=feats["mel"],
                        speech=feats["speech"], pose=pose,
                        pose_image=head_box_images(pose, self.params.a2et.pose_image_size),
                        pe=np.zeros((n, self.basis.n), np.float32), keypoints=np.zeros((n, k, 3), np.float32),
                        rotation=rotation, translation=pose[:, 3:6].copy(), source=source, audio=str(audio.wav))

    def frames(self, request: Request, face: Face, audio: Audio, timer: Timer) -> Iterator[np.ndarray]:
        """(S, S, 3) uint8 frames of the clip, chunk by chunk (module docstring). The source latent, the pose
        track and the emotion codes are made now (errors surface before any encoding starts); frames on demand."""
        model = self.model
        with timer("face"), torch.no_grad():
            source, own_pose = self.source(face)
            with blame(request.pose, "driving video"):
                poses = self.pose_track(request, own_pose, audio.n_frames)
        codes = emotion_codes(model, request.mix, latent_code(model, request.seed).to(self.device))
        with timer("face"):
            renderer = SourceRenderer(model.generator, source, codes[0] if model.variant.eam else None, self.device)
        return self._chunks(request, audio, source, poses, renderer, emotional_predictor(model, codes), timer)

    def _chunks(self, request: Request, audio: Audio, source: Source, poses, renderer: SourceRenderer,
                predict: Predictor, timer: Timer) -> Iterator[np.ndarray]:
        T = audio.n_frames
        for start in range(0, T, self.chunk_frames):
            stop = min(T, start + self.chunk_frames)
            lo, hi = max(0, start - self.half), min(T, stop + self.half)
            with timer("audio_features"):
                clip = self.chunk_clip(audio, source, poses, lo, hi, describe(request.mix))
            with timer("a2et"):
                _, kp = predict_keypoints(predict, clip, self.half, 64, np.arange(start - lo, stop - lo), self.device)
            for b in range(0, len(kp), self.batch_size):
                with timer("rendering"):
                    batch = renderer(kp[b:b + self.batch_size])
                yield from batch


def _timed(frames: Iterator[np.ndarray], timer: Timer, paste: PasteBack | None, keep: list | None,
           bar: Any = None) -> Iterator[np.ndarray]:
    """Frames out of the generator, pasted back if asked; time inside the generator is already counted."""
    for frame in frames:
        if keep is not None:
            keep.append(frame)
        out = frame
        if paste is not None:
            with timer("rendering"):
                out = paste(frame)
        if bar is not None:
            bar.update(1)
        yield out


def generate(generator: Generator, request: Request, keep_frames: bool = False,
             progress: Progress | None = None) -> Result:
    """Make ``request.output`` (mp4: H.264 + AAC); returns frame count and seconds per phase. ``progress``:
    e.g. :func:`frame_bar`, made once the frame count is known and advanced per frame."""
    params, timer = generator.params, Timer()
    with tempfile.TemporaryDirectory(prefix="eat-generate-") as tmp:
        with timer("face"), blame(request.image, "image"):
            face = prepare_face(request.image, params, request.on_multiple)
        with timer("audio_features"), blame(request.audio, "audio file"):
            audio = prepare_audio(request.audio, params, tmp)
        paste = PasteBack(face) if request.paste_back else None
        height, width = (paste.height, paste.width) if paste else face.frame.shape[:2]
        kept: list[np.ndarray] | None = [] if keep_frames else None
        video = Path(tmp) / "video.mp4"
        start = time.perf_counter()
        inner_before = sum(timer.seconds.values())
        frames = generator.frames(request, face, audio, timer)     # the pose track's errors come before the bar
        bar = progress(audio.n_frames, Path(request.output).name) if progress else None
        try:
            write_video(video, _timed(frames, timer, paste, kept, bar), params.signal.fps, width, height, crf=18)
        finally:
            if bar is not None:
                bar.close()
        inner = sum(timer.seconds.values()) - inner_before
        timer.seconds["encoding"] += time.perf_counter() - start - inner
        with timer("encoding"):
            mux_audio(video, audio, request.output)
    return Result(request.output, audio.n_frames, round(audio.seconds, 3), timer.summary(), face.n_faces,
                  (width, height), kept or [])


def mux_audio(video: Path, audio: Audio, out: Path | str) -> None:
    """Copy the H.264 stream and encode the 16 kHz speech as AAC into ``out`` (the video keeps all T frames)."""
    out = Path(out)
    with atomic_path(out) as tmp:
        run_ffmpeg(["-i", str(video), "-i", str(audio.wav), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a",
                    "aac", "-b:a", "128k", "-f", "mp4", str(tmp)], out)


def make_request(image: str, audio: str, output: str, mix: dict[str, float], pose: str = "static", seed: int = 0,
                 paste_back: bool = False, on_multiple: OnMultiple = "largest") -> Request:
    """A :class:`Request`, checked before any model is loaded (pose mode, output suffix)."""
    if pose not in ("static", "natural") and not Path(pose).is_file():
        raise ValueError(f"--pose {pose!r}: expected static, natural or the path of a driving video")
    if Path(output).suffix.lower() != ".mp4":
        raise ValueError(f"-o {output}: the output is an mp4 file (name it *.mp4)")
    return Request(str(image), str(audio), str(output), dict(mix), pose, seed, paste_back, on_multiple)
