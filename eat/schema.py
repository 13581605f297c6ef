"""Layouts of every table and array the pipeline writes: the one place to look them up.

Coordinates are pixels of the frame as written (x right, y down, origin at the
top-left pixel corner). Head pose is (yaw, pitch, roll) in degrees — positive
yaw turns the face towards the image right, positive pitch looks up, positive
roll tilts the head clockwise on screen — and (tx, ty, tz) in millimetres in
the camera frame (tz towards the camera). Landmarks follow iBUG-68 order (jaw
0–16, brows 17–26, nose 27–35, eyes 36–47, outer lip 48–59, inner lip 60–67).
"""

from __future__ import annotations

import pyarrow as pa

N_LANDMARKS = 68

# data/synth/groundtruth/clips.parquet — one row per synthetic clip.
SYNTH_CLIPS = pa.schema([
    ("dataset", pa.string()),          # "MEAD" | "LRW" | "VoxCeleb2"
    ("clip_id", pa.string()),          # unique over all datasets, e.g. "MEAD/M003/angry/level_3/001"
    ("identity", pa.string()),         # M003, W009 / lrw_s01 / id00017
    ("gender", pa.string()),           # "male" | "female"
    ("emotion", pa.string()),          # one of eat.config.EMOTIONS (LRW and VoxCeleb2: "neutral")
    ("level", pa.int8()),              # MEAD intensity 1–3 (neutral: 1)
    ("sentence_id", pa.int16()),       # index into eat.synth.corpus.SENTENCES (-1 for LRW)
    ("text", pa.string()),             # what is said
    ("word", pa.string()),             # LRW target word, else ""
    ("split", pa.string()),            # "train" | "val" | "test": the identity split planned by params
    ("video", pa.string()),            # path relative to the dataset root
    ("audio", pa.string()),            # path relative to the dataset root (LRW: same as video)
    ("fps", pa.float32()),
    ("n_frames", pa.int32()),
    ("width", pa.int16()),
    ("height", pa.int16()),
    ("audio_rate", pa.int32()),
    ("n_samples", pa.int64()),         # audio samples as synthesised, = round(n_frames * audio_rate / fps)
])

# data/synth/groundtruth/frames.parquet — one row per video frame.
SYNTH_FRAMES = pa.schema([
    ("clip_id", pa.string()),
    ("frame", pa.int32()),
    ("landmarks", pa.list_(pa.float32(), 2 * N_LANDMARKS)),  # x0, y0, x1, y1, … x67, y67 in frame pixels
    ("yaw", pa.float32()), ("pitch", pa.float32()), ("roll", pa.float32()),
    ("tx", pa.float32()), ("ty", pa.float32()), ("tz", pa.float32()),
    ("mouth_open_px", pa.float32()),   # distance of inner-lip midpoints 62–66 in pixels
    ("aperture", pa.float32()),        # viseme aperture driving the jaw, in [0, 1]
    ("blink", pa.float32()),           # eyelid closure in [0, 1]
])

# data/synth/groundtruth/phones.parquet — one row per phoneme.
SYNTH_PHONES = pa.schema([
    ("clip_id", pa.string()),
    ("phone", pa.string()),            # eSpeak NG mnemonic
    ("start_s", pa.float32()),         # seconds from the clip start
    ("end_s", pa.float32()),
])

# ---------------------------------------------------------------------------------------------
# Preprocessing (data/interim/…). Every per-clip file is named by the clip's ``uid``: the
# clip id with "/" replaced by "__" (e.g. "MEAD__M003__angry__level_3__001").

# data/interim/manifest.parquet — one row per usable raw clip (ingest stage).
MANIFEST = pa.schema([
    ("clip_id", pa.string()),          # "<dataset>/<path inside the dataset without extension>"
    ("uid", pa.string()),              # clip_id with "/" → "__": the file stem of every per-clip output
    ("dataset", pa.string()),          # "MEAD" | "LRW" | "VoxCeleb2"
    ("identity", pa.string()),
    ("emotion", pa.string()),          # LRW / VoxCeleb2: "neutral"
    ("level", pa.int8()),
    ("sentence", pa.string()),         # MEAD: file number "001"; LRW: the word; VoxCeleb2: "<video>/<utt>"
    ("text", pa.string()),             # transcript if known (synthetic ground truth; LRW: the word), else ""
    ("split", pa.string()),            # "train" | "val" | "test", by identity (LRW: its own folders)
    ("video_path", pa.string()),       # absolute path of the raw video
    ("audio_path", pa.string()),       # absolute path of the raw audio (may equal video_path)
    ("fps", pa.float32()),
    ("audio_rate", pa.int32()),
    ("duration_s", pa.float32()),      # video duration
    ("n_frames", pa.int32()),
    ("width", pa.int16()),
    ("height", pa.int16()),
])

# data/interim/<stage>_quarantine.parquet — clips a stage could not use, and why.
QUARANTINE = pa.schema([
    ("clip_id", pa.string()),          # or the file path when no clip id could be formed
    ("stage", pa.string()),
    ("path", pa.string()),             # the offending file
    ("reason", pa.string()),           # a sentence naming the problem and, where there is one, the fix
])

# data/interim/normalised/<uid>.mp4 — H.264 at signal.fps, original frame size.
# data/interim/normalised/<uid>.wav — mono PCM16 at signal.audio_rate, exactly
#   n_frames * audio_rate / fps samples (640 per frame at the paper's 25 fps / 16 kHz).
# data/interim/normalised.parquet — MANIFEST columns (fps, audio_rate, n_frames, duration_s
#   describe the normalised files) plus:
NORMALISED_EXTRA = [("video_norm", pa.string()), ("audio_norm", pa.string())]

# data/interim/aligned/<uid>.mp4 — (T, S, S, 3) aligned face crops, S = crop_align.size,
#   H.264 yuv444p, crf from params (visually lossless; see eat/preprocess/crop_align.py).
# data/interim/aligned/<uid>.npz — landmarks: (T, 68, 2) float32, iBUG order, in crop pixels;
#   box: (T, 4) float32 crop box (x0, y0, side, side) in normalised-frame pixels;
#   frames: (T, s, s, 3) uint8 RGB, the crops area-downscaled to s = signal.image_size (what the models read).
# data/interim/aligned.parquet — NORMALISED columns plus ("aligned", path) and
#   ("landmark_detected_frac", float32).

# data/features/audio/<uid>.npz — uncompressed, byte-deterministic (eat/features/store.py):
#   mel:    (T, signal.n_mels) float32, ln(1e-5 + power mel), HTK scale, Hann window = hop = 640 zero-padded
#           to n_fft 2048; frame i = samples [hop·i, hop·(i+1)): exactly one frame per video frame
#   mfcc:   (T, audio_features.n_mfcc) float32, orthonormal DCT-II of 10·log10(power mel), same frames
#   speech: (T, audio_features.speech_window, 29) float32 raw (pre-softmax) logits at 50 fps of the speech
#           backend; row i = steps 2i−7 … 2i+8 (step j = samples [320 j, 320 (j+1))), zeros outside the clip;
#           symbol k = eat.features.alphabet.SYMBOLS[k]: space, a–z, apostrophe, CTC blank (DeepSpeech's order)
# data/features/audio/<uid>.key — the clip's resume key (hex SHA-256)
# data/features/audio.parquet — uid, clip_id, dataset, split, n_frames (int32), features (npz path),
#   speech_backend ("ctc" | "deepspeech"); data/features/audio_quarantine.parquet — QUARANTINE
# models/speech_recognizer/model.pt — the ctc backend: {"config", "state_dict", "symbols", "rate", "hop",
#   "substitute_for"}; torch.load(weights_only=True)
# data/features/pose/<uid>.npy — (T, 6) float32 yaw, pitch, roll [deg], tx, ty, tz, from
#   landmarks by PnP against a 3D mean face (conventions at the top of this module).

# ---------------------------------------------------------------------------------------------
# Latent model (Sec. 3.1.1). Keypoints are in the model's normalised volume coordinates: x along
# the image width, y along its height, z in depth, each in [-1, 1] (OSFV's convention).
# models/latent/<variant>/model.pt — {"config": LatentConfig dict, "mode": "osfv" | "enhanced", "steps",
#   "vgg": which VGG19 the perceptual loss used, "kp_detector", "he_estimator", "generator": state dicts};
#   torch.load(weights_only=True); eat.latent.train.load_inference_model reads it.
# models/latent/<variant>/ray/<variant>/checkpoint_*/state.pt — Ray Train checkpoints (resume points).
# reports/latent/<variant>/train_log.csv — one row per latent_train.log_every steps: step, the mean of each
#   weighted loss term over those steps, total, discriminator, seconds_per_step.
# data/features/latent/<uid>.npz — uncompressed, byte-deterministic (eat/io/arrays.py):
#   canonical:   (k, 3) float32 K_c of the clip's source frame (frame 0)
#   angles:      (T, 3) float32 yaw, pitch, roll in degrees, as the head-pose estimator predicts them
#   rotation:    (T, 3, 3) float32 R_i
#   translation: (T, 3) float32 T_i
#   expression:  (T, k, 3) float32 E_i
#   keypoints:   (T, k, 3) float32 K_i = R_i K_c + T_i + E_i (Eq. 1), with K_c of frame 0
# data/features/latent.parquet — the pose table's columns plus ("latent", npz path).
# models/pca/U_mead.npy — (3k, 3k) float32 principal axes of E (flattened k × 3, row-major) as columns,
#   by decreasing variance; models/pca/mean_mead.npy — (3k,) float32 mean. E_i = PE_i · U[:, :n]ᵀ + M
#   with n = latent.pca_components: the official EAT files' layout.
