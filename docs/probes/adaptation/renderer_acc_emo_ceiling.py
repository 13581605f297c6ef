"""Acc_emo ceiling of the renderer: MEAD test clips re-rendered from their own keypoints (Table 3 protocol)."""
import sys
import time

import numpy as np

from eat.adapt.heldout import heldout_clips
from eat.config import EMOTIONS, load_params
from eat.emotion.predict import predict_videos
from eat.emotion.train import load_emotion_classifier
from eat.evaluation import generate_reconstruction
from eat.latent.pca import ExpressionBasis

params = load_params("params.yaml")
basis = ExpressionBasis.load("models/pca", params.latent.pca_components)
clips = heldout_clips(params, "data/features/latent.parquet", "data/features/audio.parquet", basis,
                      "models/latent/enhanced/model.pt", int(sys.argv[1]), emotional_only=False)
clf = load_emotion_classifier("models/emotion_classifier/model.pt")
truth = np.array([EMOTIONS.index(c.emotion) for c in clips])
print("clips", len(clips), "truth acc", np.mean(predict_videos(clf, [c.frames for c in clips]) == truth))
for variant in ("enhanced", "osfv"):
    t = time.time()
    videos = generate_reconstruction(f"models/latent/{variant}/model.pt", clips)
    pred = predict_videos(clf, videos)
    per = {e: float(np.mean(pred[truth == i] == i)) for i, e in enumerate(EMOTIONS) if (truth == i).any()}
    print(variant, f"{time.time()-t:.0f}s", "acc", np.mean(pred == truth), "mean", np.mean(list(per.values())), per,
          "pred counts", np.bincount(pred, minlength=8).tolist())
