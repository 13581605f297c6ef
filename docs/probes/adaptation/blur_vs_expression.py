"""Is the renderer's Acc_emo lost to blur or to an expression that does not arrive? (run from the repository root)

The 24 MEAD test clips of the evaluation sample: Emotion-FAN on (a) the ground-truth frames, (b) the same frames
blurred (Gaussian, sigma in pixels at 64²) to the renders' face PSNR, (c) the enhanced latent's reconstructions
(keypoints detected in the clip's own frames, neutral source; eat.evaluation.generate_reconstruction). If (b)
stays near (a), blur alone does not explain (c): the expression itself does not reach the render.
"""
import sys

import cv2
import numpy as np
import torch

from eat.adapt.heldout import heldout_clips
from eat.config import EMOTIONS, load_params
from eat.emotion.predict import predict_videos
from eat.emotion.train import load_emotion_classifier
from eat.evaluation import generate_reconstruction
from eat.latent.evaluate import psnr
from eat.latent.pca import ExpressionBasis

params = load_params("params.yaml")
basis = ExpressionBasis.load("models/pca", params.latent.pca_components)
clips = heldout_clips(params, "data/features/latent.parquet", "data/features/audio.parquet", basis,
                      "models/latent/enhanced/model.pt", 24, emotional_only=False)
clf = load_emotion_classifier("models/emotion_classifier/model.pt")
truth = np.array([EMOTIONS.index(c.emotion) for c in clips])


def score(name: str, videos: list[np.ndarray]) -> None:
    pred = predict_videos(clf, videos)
    db = np.mean([float(psnr(torch.from_numpy(v).float() / 255, torch.from_numpy(c.frames).float() / 255).mean())
                  for v, c in zip(videos, clips, strict=True)])
    print(f"{name:28s} whole-frame PSNR {db:5.2f} dB  Acc_emo {np.mean(pred == truth):.3f}  "
          f"predicted {np.bincount(pred, minlength=8).tolist()}")


score("ground truth", [c.frames for c in clips])
for sigma in [float(s) for s in sys.argv[1:]] or [0.7, 1.0, 1.5, 2.0]:
    score(f"ground truth, blur sigma {sigma}", [np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in c.frames])
                                               for c in clips])
score("enhanced reconstructions", generate_reconstruction("models/latent/enhanced/model.pt", clips))
