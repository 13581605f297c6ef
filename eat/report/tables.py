"""Builders of the paper's tables from :class:`~eat.report.inputs.RunResults`: T1 (MEAD, LRW), T2 (user
study), T3 (latent), T4 (prompts), T5 (components), T6 (losses), T7 (per-emotion Acc_emo), T8 (EDN init) and
the numbers behind Fig. 6. Each cell is ours beside the paper's (:mod:`paper_numbers`) — never a typed number.
Every Acc_emo cell carries the clips n behind ours and is compared with the paper only where n ≥ 3; a row (T7: a
column) of the paper that no model of the run matches — a baseline not run here — is shown on its own, ours
empty, with the reason."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eat.config import EMOTIONS
from eat.report.inputs import BASELINE_PREFIX, LATENT_RECONSTRUCTIONS, RunResults
from eat.report.paper_numbers import PaperNumbers
from eat.report.substitutes import Flag, for_table
from eat.report.table_model import NO_COMPARISON, Cell, Column, Row, Table

LABELS = {"ground_truth": "Ground Truth", "pretrain": "Pretrain", "eat": "EAT",
          "static": "static source frame (baseline)"}
NOT_RECORDED = "Paper values not recorded here (the paper's tables are cited in docs/paper_notes.md §10)."
# The paper's names of its rows that are no model name of the pipeline (paper_numbers.yaml rows).
PAPER_LABELS = {"baseline_atvg": "ATVG", "baseline_wav2lip": "Wav2Lip", "baseline_makeittalk": "MakeItTalk",
                "baseline_avct": "AVCT", "baseline_pcavs": "PC-AVS", "baseline_eamm": "EAMM",
                "no_prompt": "(A) no prompt"}
PAPER_ONLY_REASONS = {"no_prompt": "no variant of this run adapts without prompts, EDN and EAM (prompts_none keeps "
                                   "EDN and EAM): the paper's value only."}
COUNTED = frozenset({"Acc_emo", "acc_emo"})     # column keys whose cells carry the clip count n


@dataclass(frozen=True)
class Metric:
    """A paper column and the metric keys that may fill it: (our key, label, comparable with the paper)."""

    paper: str
    keys: tuple[tuple[str, str, bool], ...]
    digits: int = 2
    scale: float = 1.0
    better: int = 1
    counted: bool = False       # Acc_emo: a share of clips, shown with its n


METRICS = {
    "PSNR": Metric("PSNR", (("PSNR", "PSNR", True),)),
    "SSIM": Metric("SSIM", (("SSIM", "SSIM", True),), digits=3),
    "FID": Metric("FID", (("FID", "FID", True), ("FD_emotion_fan", "FD_emotion_fan", False)), better=-1),
    "Sync": Metric("Sync", (("Sync", "Sync", True), ("Sync_expert", "Sync_expert", False))),
    "M-LMD": Metric("M-LMD", (("M-LMD", "M-LMD", True),), better=-1),
    "F-LMD": Metric("F-LMD", (("F-LMD", "F-LMD", True),), better=-1),
    "Acc_emo": Metric("Acc_emo", (("Acc_emo", "Acc_emo (%)", True),), scale=100.0, counted=True),
}
MEAD_METRICS = ("PSNR", "SSIM", "FID", "Sync", "M-LMD", "F-LMD", "Acc_emo")
LRW_METRICS = ("PSNR", "SSIM", "FID", "Sync", "M-LMD", "F-LMD")
LMD_NOTE = ("F-LMD is the mean over all 68 landmarks; the official script adds the mouth value into it "
            "(docs/paper_notes.md §11), so the paper's F-LMD is inflated by M-LMD.")


def paper_key(model: str) -> str:
    """The paper_numbers.yaml row of ``model``: its name, or for a baseline ``baseline_`` + the method's name in
    lower case, letters and digits only (data/baselines/PC-AVS/ → baseline_pcavs)."""
    if model.startswith(BASELINE_PREFIX):
        return BASELINE_PREFIX + re.sub(r"[^a-z0-9]", "", model[len(BASELINE_PREFIX):].lower())
    return model


def label(model: str) -> str:
    if model.startswith(BASELINE_PREFIX):
        return PAPER_LABELS.get(paper_key(model), model[len(BASELINE_PREFIX):]) + " (baseline)"
    return LABELS.get(model, model)


def paper_only_reason(key: str) -> str:
    if key.startswith(BASELINE_PREFIX):
        return ("the paper's baseline, not run here: the paper's value only (to score it, put its videos of "
                "reports/evaluate/test_clips.csv in data/baselines/<method>/).")
    return PAPER_ONLY_REASONS.get(key, "no model of this run corresponds: the paper's value only.")


def paper_only_rows(table_id: str, paper: PaperNumbers, covered: set[str], columns: Sequence[Column],
                    paper_column: Callable[[Column], str | None] = lambda c: c.key,
                    ours_reason: str | None = None) -> tuple[list[Row], list[str]]:
    """Rows of ``table_id`` in paper_numbers.yaml that no row of ours matches (``covered``: our paper keys): the
    paper's values, ours empty; and the notes that say why (one per reason). ``ours_reason``: why a model of the
    pipeline has no row (else the row is a baseline or a variant of the paper's not run here)."""
    rows, reasons = [], {}
    for key in paper.rows(table_id):
        if key in covered:
            continue
        ours = ours_reason is not None and not key.startswith(BASELINE_PREFIX) and key not in PAPER_LABELS
        why = ours_reason if ours else paper_only_reason(key)
        name = label(key) if ours else f"{PAPER_LABELS.get(key, key)} (paper only)"
        cells = [Cell(None, paper.get(table_id, key, pc) if (pc := paper_column(c)) else None,
                      comparable=c.comparable, counted=c.key in COUNTED) for c in columns]
        rows.append(Row(key, name, cells, why))
        reasons.setdefault(why, []).append(name)
    return rows, [f"{', '.join(names)}: {why}" for why, names in reasons.items()]


def not_recorded_notes(paper: PaperNumbers, table_id: str) -> list[str]:
    """The note naming what the paper does not give for ``table_id`` (none where the file names nothing)."""
    items = paper.not_recorded.get(table_id)
    return [f"Paper value not recorded here for: {'; '.join(items)}."] if items else []


def _resolve(metric: Metric, results: RunResults, models: Sequence[str], dataset: str) -> tuple[str, str, bool]:
    """The first key of ``metric`` any of ``models`` reports (else the paper's own name)."""
    for key, name, comparable in metric.keys:
        if any(results.metric(m, f"{dataset}/{key}") is not None for m in models):
            return key, name, comparable
    return metric.keys[0]


def _missing_note(results: RunResults, model: str) -> str | None:
    loaded = results.evaluate.get(model)
    if loaded is None:
        return f"{model}: not a model of this run (params.yaml adaptation_variants)"
    return None if loaded.ok else loaded.reason


FACE_METRICS = ("PSNR", "SSIM", "FID", "M-LMD", "F-LMD")


def _no_face_note(results: RunResults, model: str, dataset: str, columns: Sequence[Column]) -> str | None:
    """Why a model's face-aligned metrics are absent: the detector found no face in any of its frames, and the
    official protocol skips such frames (metrics.align)."""
    absent = [c.label for c in columns if c.key in FACE_METRICS]
    if not absent or results.metric(model, f"{dataset}/face_frames") != 0:
        return None
    return (f"{', '.join(absent)} absent: the landmark detector found no face in any of its generated frames "
            "(face_frames 0), and the protocol scores only frames with a face on both sides.")


def metric_table(table_id: str, title: str, results: RunResults, paper: PaperNumbers, flags: list[Flag],
                 dataset: str, rows: Sequence[tuple[str, str]], metrics: Sequence[str], caption: str,
                 notes: Sequence[str] = ()) -> Table:
    """Rows = models (key, label), columns = ``metrics`` of ``dataset`` from ``evaluate/<model>/metrics.json``,
    then the paper's rows no model matches; Acc_emo cells carry n (``<dataset>/clips``)."""
    models = [m for m, _ in rows]
    columns, picks = [], []
    for name in metrics:
        metric = METRICS[name]
        key, col_label, comparable = _resolve(metric, results, models, dataset)
        columns.append(Column(name, col_label, metric.digits, comparable, metric.better))
        picks.append((metric, key, comparable))
    out_rows, extra = [], list(notes)
    for model, row_label in rows:
        cells = []
        for metric, key, comparable in picks:
            ours = results.metric(model, f"{dataset}/{key}")
            cells.append(Cell(None if ours is None else ours * metric.scale,
                              paper.get(table_id, paper_key(model), metric.paper), comparable=comparable,
                              counted=metric.counted,
                              n=results.acc_clips(model, dataset) if metric.counted else None))
        note = _missing_note(results, model)
        out_rows.append(Row(model, row_label, cells, note))
        for why in (note, _no_face_note(results, model, dataset, columns)):
            if why:
                extra.append(f"{row_label}: {why}")
    paper_rows, paper_notes = paper_only_rows(table_id, paper, {paper_key(m) for m in models}, columns)
    out_rows += paper_rows
    extra += paper_notes
    table = Table(table_id, title, columns, out_rows, caption, extra, for_table(flags, table_id))
    if not table.has_paper:
        table.notes.insert(0, NOT_RECORDED)
    else:
        table.notes[:0] = not_recorded_notes(paper, table_id)
    return table


def table1(results: RunResults, paper: PaperNumbers, flags: list[Flag], dataset: str) -> Table:
    rows = [(m, label(m)) for m in ("pretrain", "eat", "static", "ground_truth")]
    rows += [(BASELINE_PREFIX + b, label(BASELINE_PREFIX + b)) for b in results.baselines]
    metrics = MEAD_METRICS if dataset == "MEAD" else LRW_METRICS
    protocol = ("MEAD test identities, neutral source frame, ground-truth head pose, predicted keypoints"
                if dataset == "MEAD" else "LRW test, first frame as source, neutral, relative keypoints")
    clips = results.metric("eat", f"{dataset}/clips")
    return metric_table(f"T1_{dataset}", f"Table 1 ({dataset}): comparison with the pretrained model", results,
                        paper, flags, dataset, rows, metrics,
                        f"{dataset}: {protocol}; {int(clips) if clips else '?'} test clips (EAT row). "
                        "Higher is better for PSNR, SSIM, Sync, Acc_emo; lower for FID, LMD.", [LMD_NOTE])


def table_variants(table_id: str, title: str, results: RunResults, paper: PaperNumbers, flags: list[Flag],
                   rows: Sequence[tuple[str, str]], metrics: Sequence[str] = MEAD_METRICS, what: str = "",
                   notes: Sequence[str] = ()) -> Table:
    """An ablation table (T4, T5, T6, T8): adaptation variants on the MEAD test protocol."""
    return metric_table(table_id, title, results, paper, flags, "MEAD", rows, metrics,
                        f"{what} MEAD test protocol; every variant adapted with the same steps and data.", notes)


def table4(results, paper, flags) -> Table:
    return table_variants("T4", "Table 4: emotional prompts", results, paper, flags,
                          [("prompts_none", "none"), ("prompts_shallow", "shallow"), ("eat", "deep (EAT)")],
                          what="Prompts in no / the first / every A2ET layer;",
                          notes=["The paper's Table 4 rows are prompt-only models (its 'none' and 'deep' rows are "
                                 "Table 5's (A) and (B)); this run's Table 4 variants all keep EDN and EAM, so they "
                                 "differ from the paper's rows in more than the prompts."])


def table5(results, paper, flags) -> Table:
    return table_variants("T5", "Table 5: adaptation components", results, paper, flags,
                          [("prompt_only", "prompt"), ("prompt_edn", "+EDN"), ("eat", "+EAM (EAT)")],
                          what="Deep prompts alone, + emotional deformation network, + emotion adaptation module;")


def table6(results, paper, flags) -> Table:
    return table_variants("T6", "Table 6: adaptation losses (cumulative)", results, paper, flags,
                          [("loss_per", "+L_per"), ("loss_per_lat", "+L_lat"), ("loss_per_lat_sync", "+L_sync"),
                           ("eat", "+L1 (EAT)")], metrics=("PSNR", "Sync"),
                          what="Losses added one by one;")


def table8(results, paper, flags) -> Table:
    return table_variants("T8", "Table 8: EDN initialisation", results, paper, flags,
                          [("edn_random", "random"), ("eat", "from the A2ET encoder (EAT)")],
                          what="EDN initialised randomly or from the pretrained A2ET encoder;")


def table7(results: RunResults, paper: PaperNumbers, flags: list[Flag]) -> Table:
    """Per-emotion Acc_emo (%) on MEAD and their mean (``Acc_emo_mean``, the paper's "average"); rows are the
    emotions, columns the models (the paper reports EAT's)."""
    models = ["pretrain", "eat", "ground_truth", *(BASELINE_PREFIX + b for b in results.baselines)]
    covered = {paper_key(m) for m in models}
    paper_only = [k for k in paper.rows("T7") if k not in covered]
    columns = [Column(m, label(m), 2, better=1) for m in models]
    columns += [Column(k, f"{PAPER_LABELS.get(k, k)} (paper only)", 2, better=1) for k in paper_only]
    rows = []
    for e in (*EMOTIONS, "average"):
        key = "MEAD/Acc_emo_mean" if e == "average" else f"MEAD/Acc_emo_{e}"
        values = [results.metric(m, key) for m in models]
        cells = [Cell(None if v is None else 100 * v, paper.get("T7", paper_key(m), e), counted=True,
                      n=results.acc_clips(m, "MEAD", None if e == "average" else e))
                 for v, m in zip(values, models, strict=True)]
        rows.append(Row(e, e, cells + [Cell(None, paper.get("T7", k, e), counted=True) for k in paper_only]))
    notes = not_recorded_notes(paper, "T7")
    notes += [f"{label(m)}: {n}" for m in models if (n := _missing_note(results, m))]
    reasons: dict[str, list[str]] = {}
    for k, c in zip(paper_only, columns[len(models):], strict=True):
        reasons.setdefault(paper_only_reason(k), []).append(c.label)
    notes += [f"{', '.join(names)}: {why}" for why, names in reasons.items()]
    return Table("T7", "Table 7: Acc_emo per emotion (%)", columns, rows,
                 "Emotion classifier accuracy per target emotion on the MEAD test clips, with the clips n of the "
                 "emotion (average: mean of the per-emotion accuracies present, n all clips). A cell is empty "
                 "where the test set has no clip of the emotion.",
                 notes, for_table(flags, "T7"), row_header="emotion")


# Table 3: our column → the paper's. The paper's PSNR (aligned 128-px crops of MEAD test videos reenacted from a
# neutral source) is shown beside our nearest setting, the face-region PSNR from a neutral source, without a
# difference (another crop and resolution); M-LMD, F-LMD, Sync and Acc_emo come from the evaluate stage's
# reconstructions of the MEAD test clips (LATENT_RECONSTRUCTIONS), scored as every generated video.
T3_PAPER = {"neutral_source.psnr_face": "PSNR", "M-LMD": "M-LMD", "F-LMD": "F-LMD", "Sync": "Sync",
            "Acc_emo": "Acc_emo"}
T3_EVALUATED = ("M-LMD", "F-LMD", "Sync", "Acc_emo")


def table3(results: RunResults, paper: PaperNumbers, flags: list[Flag]) -> Table:
    """Latent reconstruction on held-out identities: OSFV vs enhanced vs copying, beside the paper's Table 3
    (:data:`T3_PAPER`). PSNR columns: train_latent's held-out metrics; the others: the evaluate stage's
    ``latent_<variant>`` rows (each MEAD test clip re-rendered from its own frames' keypoints, neutral source)."""
    spots = [("same_clip", "psnr", "PSNR, source from the same clip"),
             ("neutral_source", "psnr", "PSNR, neutral source"),
             ("same_clip", "psnr_face", "face PSNR, same clip"),
             ("neutral_source", "psnr_face", "face PSNR, neutral source")]
    columns = [Column(f"{a}.{b}", text, comparable=f"{a}.{b}" not in T3_PAPER) for a, b, text in spots]
    rebuilt = {variant: model for model, variant in LATENT_RECONSTRUCTIONS.items()}
    picks = [(name, METRICS[name], *_resolve(METRICS[name], results, list(rebuilt.values()), "MEAD"))
             for name in T3_EVALUATED]
    evaluated = [Column(name, text, metric.digits, comparable, metric.better)
                 for name, metric, _, text, comparable in picks]
    columns += evaluated

    def value(data: dict | None, a: str, b: str) -> float | None:
        v = ((data or {}).get("heldout") or {}).get(a, {}).get(b)
        return None if v is None else float(v)

    def paper_value(variant: str, column: Column) -> float | None:
        return paper.get("T3", variant, T3_PAPER[column.key]) if column.key in T3_PAPER else None

    rows, notes = [], []
    for variant, name in (("osfv", "OSFV latent"), ("enhanced", "Enhanced latent (EAT)")):
        loaded = results.latent[variant]
        data = loaded.data if loaded.ok else None
        cells = [Cell(value(data, a, b), paper_value(variant, c), comparable=c.comparable)
                 for (a, b, _), c in zip(spots, columns[:len(spots)], strict=True)]
        model = rebuilt[variant]
        for (_, metric, key, _, comparable), column in zip(picks, evaluated, strict=True):
            ours = results.metric(model, f"MEAD/{key}")
            cells.append(Cell(None if ours is None else ours * metric.scale, paper_value(variant, column),
                              comparable=comparable, counted=metric.counted,
                              n=results.acc_clips(model) if metric.counted else None))
        rows.append(Row(variant, name, cells, loaded.reason))
        for why in (loaded.reason, _missing_note(results, model), _no_face_note(results, model, "MEAD", evaluated)):
            if why:
                notes.append(f"{name}: {why}")
    source = next((f.data for f in results.latent.values() if f.ok), None)
    rows.append(Row("copy_source", "copy the source frame (baseline)",
                    [Cell(value(source, a, f"{b}_copy_source")) for a, b, _ in spots]
                    + [Cell(None) for _ in evaluated]))
    clips = ((source or {}).get("heldout") or {}).get("clips")
    scored = results.metric(rebuilt["enhanced"], "MEAD/clips")
    notes[:0] = ["The paper's PSNR (aligned 128-px crops of MEAD test videos reenacted from a neutral source, "
                 "docs/paper_notes.md §7) is shown beside our face-region PSNR from a neutral source, without Δ: "
                 "another crop and resolution.",
                 f"M-LMD, F-LMD, Sync and Acc_emo: the evaluate stage's {int(scored) if scored else '?'} MEAD test "
                 "clips, each re-rendered by the latent model from the keypoints it detects in the clip's own "
                 "frames (neutral source; reports/evaluate/latent_<variant>), scored as Table 1 scores a "
                 "generated video. The copy row is not scored there.", LMD_NOTE, *not_recorded_notes(paper, "T3")]
    return Table("T3", "Table 3: enhanced latent representation", columns, rows,
                 f"Reconstruction of held-out identities ({clips or '?'} clips) by RePos-Net from the detected "
                 "keypoints, in dB; the source is a frame of the same clip or of a neutral clip of the identity.",
                 notes, for_table(flags, "T3"))


def table2(results: RunResults, paper: PaperNumbers, flags: list[Flag]) -> Table:
    """The user study (``stages/user_study.py table`` → reports/user_study/table2.json): mean ± 95 % CI."""
    columns = [Column("lipsync", "Lip-sync (1–5)", better=1), Column("quality", "Quality (1–5)", better=1),
               Column("acc_emo", "Acc_emo (%)", better=1)]
    loaded = results.user_study
    rows, notes = [], not_recorded_notes(paper, "T2")
    methods: dict = {}
    if loaded is None or not loaded.ok:
        notes.append("No ratings collected yet: run `python -m stages.user_study assemble`, collect the raters' "
                     "JSON files in reports/user_study/ratings/, then `python -m stages.user_study table` "
                     f"({loaded.reason if loaded else 'no file'}).")
        caption = "User study: not run."
    else:
        data = loaded.data
        methods = data.get("methods", {})
        for method, stats in methods.items():
            model = _study_model(method)
            rows.append(Row(method, label(model), [
                Cell(stats.get(c.key, {}).get("mean"), paper.get("T2", paper_key(model), c.key),
                     ci=stats.get(c.key, {}).get("ci95"), counted=c.key in COUNTED, n=stats.get(c.key, {}).get("n"))
                for c in columns]))
        caption = (f"{data.get('raters', '?')} raters, {data.get('videos_per_method', '?')} videos per method "
                   "(paper: 14 raters, 32 videos); mean ± half-width of the 95 % interval (t for ratings, Wilson "
                   "for Acc_emo, whose n counts judgements).")
        notes += data.get("notes", [])
    paper_rows, paper_notes = paper_only_rows("T2", paper, {paper_key(_study_model(m)) for m in methods}, columns,
                                              ours_reason="no ratings collected.")
    return Table("T2", "Table 2: user study", columns, rows + paper_rows, caption, notes + paper_notes,
                 for_table(flags, "T2"))


def _study_model(method: str) -> str:
    """The pipeline's name of a user-study method: a model, or ``baseline_<folder>`` for a baseline folder."""
    return method if method in LABELS or method.startswith(BASELINE_PREFIX) else BASELINE_PREFIX + method


def parameter_share_table(results: RunResults, paper: PaperNumbers, paper_profile: dict[str, float] | None,
                          paper_profile_note: str | None) -> Table:
    """Fig. 6's numbers: shares (%) of the whole network at the paper profile (computed here) and this run's."""
    columns = [Column("mapper", "prompts (mapper)"), Column("edn", "EDN"), Column("eam", "EAM"),
               Column("adaptation", "adaptation total")]
    rows = [Row("paper_profile", "paper profile (configs/paper.yaml, instantiated here)",
                [Cell(None if paper_profile is None else paper_profile.get(c.key),
                      paper.get("F6", "paper_profile", c.key)) for c in columns], paper_profile_note)]
    loaded = results.adaptation.get("eat")
    shares = (loaded.data.get("parameter_shares_percent") if loaded is not None and loaded.ok else None) or {}
    run = {k: float(v) for k, v in shares.items()}
    if run:
        run["adaptation"] = sum(run.get(k, 0.0) for k in ("mapper", "edn", "eam"))
    note = None if run else (loaded.reason if loaded is not None and not loaded.ok else
                             "reports/adaptation/eat/metrics.json has no parameter_shares_percent")
    rows.append(Row("run_profile", "this run's profile (reports/adaptation/eat)",
                    [Cell(run.get(c.key)) for c in columns], note))
    notes = [n for n in (paper_profile_note, note) if n]
    return Table("F6_numbers", "Figure 6 (numbers): adaptation parameters, % of the whole network", columns, rows,
                 "Whole network = RePos-Net generator + keypoint detector + A2ET + EDN + mapper "
                 "(docs/paper_notes.md §9).", notes)


def build_tables(results: RunResults, paper: PaperNumbers, flags: list[Flag],
                 paper_profile: dict[str, float] | None, paper_profile_note: str | None = None) -> list[Table]:
    """Every table, in the paper's order; a table with an Acc_emo value from fewer than 3 clips says that such a
    value is not compared with the paper (:data:`~eat.report.table_model.NO_COMPARISON`)."""
    out = [table1(results, paper, flags, "MEAD"), table1(results, paper, flags, "LRW"),
           table2(results, paper, flags), table3(results, paper, flags), table4(results, paper, flags),
           table5(results, paper, flags), table6(results, paper, flags), table7(results, paper, flags),
           table8(results, paper, flags),
           parameter_share_table(results, paper, paper_profile, paper_profile_note)]
    for table in out:
        if table.too_few:
            table.notes.append(NO_COMPARISON)
    return out
