"""DVC stage ``train_sync_expert``: train the Wav2Lip-style lip-sync expert behind L_sync (Sec. 3.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.sync.train import train_sync_expert
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", type=Path, default=paths.POSE_TABLE)
    parser.add_argument("--audio-table", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--out", type=Path, default=paths.SYNC_EXPERT,
                        help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--metrics", type=Path, default=paths.SYNC_EXPERT_METRICS,
                        help="timing.json and train_log.csv go beside it")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        result = train_sync_expert(params.sync_expert, params.seed, args.pose_table, args.audio_table, args.out,
                                   args.metrics, params.ray)
        held = result["heldout"]
        print(f"train_sync_expert: {result['steps']} steps in {result['timing']['train_seconds']} s, train loss "
              f"{result['train_loss_first']} -> {result['train_loss_last']}; held-out offset recovery "
              f"{held.get('offset_recovery_rate')} over {held.get('trials')} trials, confidence in sync "
              f"{held.get('confidence_in_sync')} vs shuffled {held.get('confidence_shuffled')} -> {args.out}/model.pt")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
