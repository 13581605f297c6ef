"""The ``eat`` command: make emotional talking-head videos, in batches, and import the official EAT weights.

    eat generate --image face.jpg --audio speech.wav --emotion happy [--intensity 0.7] [--mix angry:0.5,sad:0.5]
                 [--pose static|natural|driving.mp4] [--checkpoint models/adaptation/eat/model.pt] [--paste-back]
                 -o out.mp4
    eat batch rows.csv [--status rows.status.csv] [--workers N] [--redo]
    eat import-official <official checkpoint folder> [--out models/official]

Exit status: 0 on success, 1 when some rows of a batch failed, 2 on an error: one line on stderr naming the file
and what to fix (``-v`` adds the traceback of an unexpected one); 130 on Ctrl-C, with one line (videos are
written whole or not at all; ``eat batch`` says how many rows it finished, and run again makes only the others).
Long work shows progress bars with an ETA on stderr (``TQDM_DISABLE=1`` hides them).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from eat.config import EMOTIONS, ConfigError, deep_merge, parse_params, read_yaml
from eat.io.media import MediaError
from eat.paths import EAT_MODEL, OFFICIAL_MODELS, PAPER_PROFILE, PCA, SPEECH_RECOGNIZER_MODEL


def _load_params(path: str, profile: Path | str | None = None):
    data = read_yaml(path)
    if profile:
        data = deep_merge(data, read_yaml(profile))
    return parse_params(data, path if not profile else f"{path} + {profile}")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, default=EAT_MODEL,
                   help="adapted model (train_adaptation's model.pt, or import-official's adaptation/model.pt)")
    p.add_argument("--params", default="params.yaml", help="parameters (model sizes come from the checkpoint)")
    p.add_argument("--pca", default=None, help=f"PCA basis folder (default: the checkpoint's, else {PCA})")
    p.add_argument("--recognizer", type=Path, default=SPEECH_RECOGNIZER_MODEL, help="speech recogniser (ctc backend)")
    p.add_argument("--pose", default="static", help="static (the photo's pose), natural (gentle seeded head "
                   "motion) or a driving video whose head pose is followed (read upright by its rotation tag; "
                   "shorter than the audio: played back and forth, one frame: held, with a warning)")
    p.add_argument("--seed", type=int, default=0, help="latent code z of the emotion mapper, and the natural motion")
    p.add_argument("--paste-back", action="store_true", help="paste the animated face back into the whole photo")
    p.add_argument("--on-multiple", choices=("largest", "fail"), default="largest",
                   help="several faces in the photo: animate the largest (with a warning) or fail")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def _generator(args):
    import torch  # local: seconds to import; `eat --help` and argument errors must stay fast

    from eat.generate.pipeline import Generator  # local: pulls in torch (see above)

    if args.threads:
        torch.set_num_threads(args.threads)
    return Generator(_load_params(args.params), args.checkpoint, args.pca, args.recognizer, args.device,
                     chunk_frames=args.chunk_frames, batch_size=args.batch_size)


def cmd_generate(args) -> int:
    # local: these pull in torch, which `eat --help` and the other subcommands' start-up must not wait for
    from eat.generate.emotion import describe, emotion_mix
    from eat.generate.pipeline import frame_bar, generate, make_request

    mix = emotion_mix(args.emotion, args.intensity, args.mix)          # fail fast, before loading models
    request = make_request(args.image, args.audio, args.output, mix, args.pose, args.seed, args.paste_back,
                           args.on_multiple)
    for path, what in ((args.image, "image"), (args.audio, "audio")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: {what} file not found")
    result = generate(_generator(args), request, progress=frame_bar)
    split = ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in result.seconds.items())
    print(f"wrote {result.output}: {result.n_frames} frames ({result.audio_seconds:.2f} s, {describe(mix)}, "
          f"{result.size[0]}×{result.size[1]}) in {sum(result.seconds.values()):.1f} s — {split} "
          f"({result.frames_per_second:.1f} frames/s)")
    return 0


def cmd_batch(args) -> int:
    from eat.generate.batch import BatchJob, run_batch  # local: pulls in torch (see cmd_generate)

    params = _load_params(args.params)
    job = BatchJob(params.model_dump_json(), str(Path(args.checkpoint).resolve()), str(Path(args.recognizer).resolve()),
                   str(Path(args.pca).resolve()) if args.pca else None, args.pose, args.seed, args.paste_back,
                   args.on_multiple, args.threads, args.device, os.getcwd())
    table = run_batch(args.csv, job, args.status, workers=args.workers, address=params.ray.address, redo=args.redo)
    failed = table[table.status != "ok"]
    status = args.status or str(Path(args.csv).with_suffix(".status.csv"))
    kept = f" ({table.attrs['kept']} done by an earlier run; --redo makes them again)" if table.attrs["kept"] else ""
    print(f"{len(table) - len(failed)} of {len(table)} rows ok{kept}; status: {status} (and .json)")
    for row in failed.itertuples():
        print(f"  row {row.row}: {row.error}", file=sys.stderr)
    return 1 if len(failed) else 0


def cmd_import_official(args) -> int:
    from eat.generate.official import import_official  # local: pulls in torch (see cmd_generate)

    report = import_official(args.folder, args.out, _load_params(args.params, args.profile), args.trust_pickle)
    print(report.text())
    if "adaptation" in report.written:
        print(f"\nuse it: eat generate --checkpoint {report.written['adaptation']} --image … --audio … --emotion …")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eat", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="one photo + one audio clip + an emotion → an mp4 with sound")
    g.add_argument("--image", required=True, help="portrait photo (any format OpenCV reads)")
    g.add_argument("--audio", required=True, help="speech (any format and rate ffmpeg reads; at least one A2ET "
                   "window long: signal.window_frames frames, 0.44 s at the defaults)")
    g.add_argument("--emotion", default=None, help=f"one of {', '.join(EMOTIONS)}")
    g.add_argument("--intensity", type=float, default=None, help="0 (neutral) … 1 (the emotion's own code)")
    g.add_argument("--mix", default=None, help="a mix of emotion codes, e.g. angry:0.5,surprised:0.5")
    g.add_argument("-o", "--output", required=True, help="output .mp4")
    g.add_argument("--chunk-frames", type=int, default=500, help="frames per audio chunk (bounds memory)")
    g.add_argument("--batch-size", type=int, default=8, help="frames rendered per forward pass")
    _model_options(g)
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("batch", help="a CSV of image,audio,emotion,intensity,output rows, in parallel on Ray")
    b.add_argument("csv")
    b.add_argument("--status", default=None, help="status table (default: <csv>.status.csv, plus .json)")
    b.add_argument("--workers", type=int, default=0, help="parallel rows (0: all CPUs of the Ray session; 1: "
                   "in this process, without Ray)")
    b.add_argument("--redo", action="store_true", help="make every row again, also those an earlier run of this "
                   "status file finished (default: resume, skipping them)")
    _model_options(b)
    b.set_defaults(func=cmd_batch)

    i = sub.add_parser("import-official", help="convert the official EAT checkpoints into this project's files")
    i.add_argument("folder", help="folder with the official *.pth.tar files and U_mead.npy / mean_mead.npy")
    i.add_argument("--out", type=Path, default=OFFICIAL_MODELS, help="output root (models/ layout: latent/, a2et/, "
                   "adaptation/, pca/)")
    i.add_argument("--params", default="params.yaml")
    i.add_argument("--profile", type=Path, default=PAPER_PROFILE, help="sizes of the official networks")
    i.add_argument("--trust-pickle", action="store_true", help="allow non-tensor pickled objects in the files "
                   "(only for files from a source you trust)")
    i.set_defaults(func=cmd_import_official)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")

    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        print(f"eat {args.command}: interrupted" + (f": {err}" if str(err) else ""), file=sys.stderr)
        return 130
    except (ValueError, OSError, ConfigError, MediaError) as err:
        if args.verbose:
            traceback.print_exc()
        print(f"eat {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 — a bug, not an input: still one line (and -v for the traceback)
        if args.verbose:
            traceback.print_exc()
        print(f"eat {args.command}: error: unexpected {type(err).__name__}: {one_line(err)} (rerun with -v for "
              "the traceback)", file=sys.stderr)
        return 2


def one_line(err: BaseException) -> str:
    """The message on one line (ffmpeg's and MediaPipe's reasons span several)."""
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
