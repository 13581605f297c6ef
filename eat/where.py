"""Print where the pipeline's outputs are, after ``make repro``."""

from __future__ import annotations

import json

from eat.paths import SYNTH_SUMMARY


def main() -> None:
    print("\nOutputs:")
    if SYNTH_SUMMARY.exists():
        s = json.loads(SYNTH_SUMMARY.read_text())
        print(f"  embedded dataset : data/synth/  ({s['clips']} clips, {s['frames']} frames, "
              f"{s['bytes'] / 2**20:.1f} MiB)")
        print("  ground truth     : data/synth/groundtruth/{clips,frames,phones}.parquet")
        print("  contact sheet    : reports/synth/contact_sheet.png")
        print("  sample video     : reports/synth/sample.mp4")
        print("  preprocessed     : data/interim/aligned/ (256² faces, landmarks), data/features/{pose,audio}/")
        print("  preprocessing    : reports/preprocess/metrics.json, reports/preprocess/quarantine.md")
        print("  speech features  : reports/speech_recognizer/metrics.json (substitute for DeepSpeech)")
        print("  latent model     : models/latent/{osfv,enhanced}/model.pt, reports/latent/<variant>/"
              "{metrics.json,train_log.csv,heldout/}")
        print("  keypoint latents : data/features/latent/, PCA basis models/pca/{U_mead,mean_mead}.npy, reports/pca/")
    else:
        print("  nothing yet: run `make repro`")


if __name__ == "__main__":
    main()
