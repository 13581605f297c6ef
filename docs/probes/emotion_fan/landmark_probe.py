"""Reference for the emotion classifier: a linear probe on landmark geometry, held-out identities.

Per MEAD clip: the 68 landmarks of the crop_align stage (detected on the aligned crops), centred on the eyes
and scaled by the interocular distance, summarised by their per-frame mean and standard deviation; logistic
regression trained on the train split's identities, scored on the MEAD test identities. Once with the raw
geometry, once minus the mean geometry of the same identity's neutral clips (identity normalisation).
``--judge-size 64`` detects the landmarks again (MediaPipe) in the aligned frames resized to the judge's
resolution (what the classifier sees of a generated video), every ``--stride``-th frame.
Run from the repository root after `dvc repro crop_align pose`: `python docs/probes/emotion_fan/landmark_probe.py`.
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def detected_landmarks(aligned_video: str, size: int, stride: int) -> np.ndarray:
    """68 landmarks per frame found by MediaPipe in the aligned clip resized to ``size``² (frames without a face
    dropped)."""
    from eat.io.video import read_frames
    from eat.preprocess.landmarks import MediaPipeDetector

    detector = MediaPipeDetector(fallback=False)
    found = [detector(frame).landmarks for frame in read_frames(aligned_video, size)[::stride]]
    detector.close()
    return np.stack([f for f in found if f is not None])


def geometry(lm: np.ndarray) -> np.ndarray:
    lm = lm.astype(np.float64)
    left, right = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    normalised = (lm - lm[:, 36:48].mean(1, keepdims=True)) / np.linalg.norm(left - right, axis=1)[:, None, None]
    return np.concatenate([normalised.mean(0).ravel(), normalised.std(0).ravel()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge-size", type=int, default=0, help="re-detect at this resolution (0: the stored landmarks)")
    ap.add_argument("--stride", type=int, default=4)
    args = ap.parse_args()
    table = pd.read_parquet("data/features/pose.parquet")
    mead = table[table.dataset == "MEAD"].reset_index(drop=True)
    if args.judge_size:
        features = np.stack([geometry(detected_landmarks(path, args.judge_size, args.stride)) for path in mead.aligned])
    else:
        features = np.stack([geometry(np.load(path)["landmarks"]) for path in mead.aligned_arrays])
    neutral = {i: features[((mead.identity == i) & (mead.emotion == "neutral")).values].mean(0)
               for i in mead.identity.unique()}
    train, test = (mead.split == "train").values, (mead.split == "test").values
    relative = features - np.stack([neutral[i] for i in mead.identity])
    for name, x in [("raw geometry", features), ("minus the identity's neutral geometry", relative)]:
        scaler = StandardScaler().fit(x[train])
        probe = LogisticRegression(max_iter=5000).fit(scaler.transform(x[train]), mead.emotion[train])
        hit = pd.Series(probe.predict(scaler.transform(x[test])) == mead.emotion[test].values)
        print(f"{name}: train {probe.score(scaler.transform(x[train]), mead.emotion[train]):.3f}, held-out "
              f"{hit.mean():.3f} ({test.sum()} clips, {mead.identity[test].nunique()} identities), "
              f"by level {hit.groupby(mead.level[test].values).mean().round(2).to_dict()}")


if __name__ == "__main__":
    main()
