"""The driving speech of ``eat generate``: any audio file → 16 kHz mono, read and featurised chunk by chunk.

:func:`prepare_audio` decodes any format ffmpeg reads (wav, mp3, m4a/aac, flac, ogg, the audio of a video…) once,
resampled to ``signal.audio_rate`` mono, into a temporary PCM file; the clip has T = ⌈samples / hop⌉ video
frames (the last frame zero-padded), exactly one mel frame per video frame as in training. Audio shorter than
one A2ET window (``signal.window_frames`` whole frames: 0.44 s at the defaults, the shortest clip preprocessing
keeps, ``ingest.min_frames``) is refused with an :class:`AudioError` that says how long it is and how long it
must be: a window of mostly padding would animate noise, not speech.

Long audio is featurised in chunks (:meth:`Audio.features`), so memory stays bounded: each chunk's mel and
speech logits are computed on the chunk plus ``CONTEXT_FRAMES`` on each side (the recogniser's BiGRU and the
16-step speech windows see across the cut, the mel's n_fft window too), and only the chunk's own frames are
kept. The per-frame features are the ones the ``audio_features`` stage computes
(:func:`eat.features.extract.clip_features`). The mel of a chunk equals the one-pass mel; the speech logits
differ slightly, because the substitute recogniser standardises its input per segment it is given (per clip in
training, where clips are seconds long: per 20 s chunk is closer to that than per hour of audio).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from eat.config import Params
from eat.features.config import FeatureParams
from eat.features.extract import clip_features
from eat.features.speech_backend import SpeechBackend
from eat.io.media import MediaError, run_ffmpeg

CONTEXT_FRAMES = 50   # 2 s of audio either side of a chunk: far more than the 16-step windows and n_fft need


class AudioError(ValueError):
    """The audio cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class Audio:
    """A decoded clip: 16 kHz mono float32 PCM in ``wav`` (a temporary file), ``n_frames`` video frames."""

    path: str                 # the user's file
    wav: Path
    rate: int
    hop: int
    n_samples: int

    @property
    def n_frames(self) -> int:
        return -(-self.n_samples // self.hop)

    @property
    def seconds(self) -> float:
        return self.n_samples / self.rate

    def samples(self, start: int, stop: int) -> np.ndarray:
        """(stop − start) · hop float32 samples of frames [start, stop), zero past the end."""
        with sf.SoundFile(str(self.wav)) as fh:
            fh.seek(min(start * self.hop, self.n_samples))
            data = fh.read((stop - start) * self.hop, dtype="float32")
        out = np.zeros((stop - start) * self.hop, np.float32)
        out[:len(data)] = data
        return out

    def features(self, start: int, stop: int, params: FeatureParams, backend: SpeechBackend) -> dict[str, np.ndarray]:
        """mel (n, n_mels) and speech (n, W, 29) of frames [start, stop), computed with context (module docstring)."""
        lo, hi = max(0, start - CONTEXT_FRAMES), min(self.n_frames, stop + CONTEXT_FRAMES)
        feats = clip_features(self.samples(lo, hi), hi - lo, params, backend)
        return {k: feats[k][start - lo:stop - lo] for k in ("mel", "speech")}


def feature_params(params: Params) -> FeatureParams:
    """The audio stages' view of ``params`` (the keys :func:`clip_features` reads)."""
    return FeatureParams(seed=params.seed, signal=params.signal, audio_features=params.audio_features,
                         speech_recognizer=params.speech_recognizer, ray=params.ray)


def prepare_audio(audio_path: Path | str, params: Params, workdir: Path | str) -> Audio:
    """Decode ``audio_path`` to ``workdir``/speech.wav, ``signal.audio_rate`` mono; :class:`AudioError` if unusable."""
    path = Path(audio_path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    rate = params.signal.audio_rate
    wav = Path(workdir) / "speech.wav"
    try:
        run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-c:a", "pcm_f32le", "-f", "wav",
                    str(wav)], wav)
    except MediaError as err:
        raise AudioError(f"{path}: cannot decode audio (is it an audio file, or a video with a sound track?): "
                         f"{str(err).splitlines()[-1][-300:]}") from None
    info = sf.info(str(wav))
    if info.frames == 0:
        raise AudioError(f"{path}: the audio stream is empty")
    check_length(path, int(info.frames), params)
    return Audio(str(path), wav, rate, params.signal.hop_length, int(info.frames))


def min_samples(params: Params) -> int:
    """The shortest audio generation takes: one A2ET window of whole frames (module docstring)."""
    return params.signal.window_frames * params.signal.hop_length


def check_length(path: Path | str, n_samples: int, params: Params) -> None:
    """:class:`AudioError` naming ``path`` if ``n_samples`` (at ``signal.audio_rate``) is shorter than one window."""
    need, rate = min_samples(params), params.signal.audio_rate
    if n_samples < need:
        raise AudioError(f"{path}: the audio is {n_samples / rate:.3f} s long ({n_samples} sample"
                         f"{'' if n_samples == 1 else 's'} at {rate} Hz); "
                         f"generation needs at least {need / rate:.2f} s, one A2ET window of "
                         f"{params.signal.window_frames} frames at {params.signal.fps:g} fps (signal.window_frames)")
