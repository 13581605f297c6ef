"""The paper report (eat/report) on a fixture of the pipeline's metric files: every number comes from a file
(ours) or paper_numbers.yaml (the paper's), differences are ours − paper, every Acc_emo value shows its clip
count n and is compared only where n ≥ 3, substitutes are flagged, missing inputs are explained, and the three
renderings are complete and self-contained."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pandas as pd
import pytest
import yaml

from eat.config import EMOTIONS
from eat.report.build import build_report
from eat.report.paper_numbers import PAPER_NUMBERS, PaperNumbers
from eat.report.table_model import NO_COMPARISON
from eat.report.tables import PAPER_LABELS
from tests.conftest import REPO
from tests.report_fixture import FACELESS, MISSING, write, write_fixture

SHARES = {"mapper": 5.296, "edn": 1.172, "eam": 0.382, "adaptation": 6.851}   # test_a2et_models checks the real ones


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    reports = write_fixture(root)
    report = build_report(reports, params_path=root / "params.yaml", baselines_dir=None, repo=root,
                          dvc_lock=root / "dvc.lock", shares=SHARES)
    return root, reports, report, {t.id: t for t in report.tables}


def test_paper_numbers_file_is_complete():
    paper = PaperNumbers.load()
    assert paper.get("T1_MEAD", "eat", "PSNR") == 21.75 and paper.get("T1_LRW", "ground_truth", "Sync") == 7.06
    assert paper.get("T7", "eat", "fear") == 16.52 and paper.get("F6", "paper_profile", "adaptation") == 6.85
    # docs/paper_notes.md §10: T1 MEAD 7 × (EAT, Pretrain, 6 baselines) + GT Sync, Acc_emo; T1 LRW 6 × 8 + GT Sync;
    # T2 5 methods × 3; T3 2 × 5; T4 3 × 5; T5 4 × 5; T6 4 × 2; T7 6 methods × (8 emotions + average); T8 2 × 5
    assert Counter(t for t, _, _ in paper.values) == {"T1_MEAD": 58, "T1_LRW": 49, "T2": 15, "T3": 10, "T4": 15,
                                                      "T5": 20, "T6": 8, "T7": 54, "T8": 10, "F6": 4}
    assert len(paper.values) == 243
    assert paper.get("T1_LRW", "baseline_pcavs", "M-LMD") == 1.54 and paper.get("T1_MEAD", "baseline_eamm",
                                                                                "Acc_emo") == 49.85
    assert paper.get("T2", "ground_truth", "acc_emo") == 66 and paper.get("T3", "enhanced", "F-LMD") == 1.49
    assert paper.get("T5", "no_prompt", "Sync") == 8.12 and paper.get("T6", "loss_per_lat", "Sync") == 5.66
    assert paper.get("T7", "baseline_avct", "contempt") == 10.08 and paper.get("T8", "edn_random", "Acc_emo") == 76
    assert paper.rows("T8") == ["edn_random", "eat"]


def test_every_paper_number_is_shown_in_its_table(tmp_path):
    """paper_numbers.yaml names only rows the builders know (models of params.yaml, the paper's rows of
    PAPER_LABELS), and each of its numbers — replaced by a distinct sentinel — is shown in its table, in the row
    (Table 7: the column) of its name; ours is empty for a paper-only row, and no Δ is given without ours. With
    nothing under not_recorded, no table says that something is not recorded."""
    data = yaml.safe_load(PAPER_NUMBERS.read_text())
    for i, entry in enumerate(data["numbers"]):
        entry["value"] = 1000.0 + i
    data["not_recorded"] = {}
    sentinels = tmp_path / "paper_numbers.yaml"
    sentinels.write_text(yaml.safe_dump(data))
    paper = PaperNumbers.load(sentinels)
    models = {"pretrain", "ground_truth", *yaml.safe_load((REPO / "params.yaml").read_text())["adaptation_variants"]}
    known = {"T3": {"osfv", "enhanced"}, "F6": {"paper_profile"}}
    for table in {t for t, _, _ in paper.values}:
        assert set(paper.rows(table)) <= known.get(table, models | set(PAPER_LABELS)), table
    reports = write_fixture(tmp_path)
    report = build_report(reports, params_path=tmp_path / "params.yaml", baselines_dir=None, repo=tmp_path,
                          dvc_lock=tmp_path / "dvc.lock", paper_numbers=sentinels, shares=SHARES)
    tables = {"F6" if t.id == "F6_numbers" else t.id: t for t in report.tables}
    assert set(tables) >= {"T1_MEAD", "T1_LRW", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "F6"}
    for (table, row, _), value in paper.values.items():
        t = tables[table]
        if table == "T7":
            i = [c.key for c in t.columns].index(row)
            shown = [r.cells[i].paper for r in t.rows]
        else:
            shown = [c.paper for c in next(r for r in t.rows if r.key == row).cells]
        assert value in shown, (table, row)
    for t in tables.values():
        assert t.has_paper, t.id
        assert all(c.diff is None for r in t.rows for c in r.cells if c.ours is None), t.id
        assert all(c.ours is None for r in t.rows if r.label.endswith("(paper only)") for c in r.cells), t.id
        assert not any(n.startswith("Paper value not recorded") for n in t.notes), t.id


def test_table1_is_ours_beside_the_paper(built):
    _, _, _, tables = built
    t = tables["T1_MEAD"]
    eat = t.cell("eat", "PSNR")            # fixture: model index 2 → 20 + 0.5
    assert eat.ours == pytest.approx(20.5) and eat.paper == 21.75 and eat.diff == pytest.approx(-1.25)
    acc = t.cell("eat", "Acc_emo")         # fixture: 5 of 24 clips recognised (angry 2, contempt 3); percent
    assert acc.ours == pytest.approx(100 * 5 / 24) and acc.n == 24 and acc.diff == pytest.approx(100 * 5 / 24 - 75.43)
    assert t.cell("ground_truth", "Acc_emo").paper == 84.37
    fd = t.cell("eat", "FID")              # a substitute feature space: paper shown, no difference
    assert fd.ours == 38.0 and fd.paper == 19.69 and fd.diff is None
    assert [c.label for c in t.columns][2:4] == ["FD_emotion_fan", "Sync_expert"]
    assert [r.label for r in t.rows] == ["Pretrain", "EAT", "static source frame (baseline)", "Ground Truth",
                                         "Wav2Lip (baseline)", "ATVG (paper only)", "MakeItTalk (paper only)",
                                         "AVCT (paper only)", "PC-AVS (paper only)", "EAMM (paper only)"]
    static = t.cell("static", "M-LMD")                 # the floor, scored on the same clips; the paper has no such row
    assert static.ours is not None and static.paper is None and static.diff is None
    base = t.cell("baseline_wav2lip", "PSNR")          # data/baselines/wav2lip → the paper's Wav2Lip row
    assert base.paper == 19.12 and base.diff == pytest.approx(base.ours - 19.12)
    few = t.cell("baseline_wav2lip", "Acc_emo")        # 2 of 2 clips: shown with n, not compared
    assert few.ours == 100.0 and few.n == 2 and few.paper == 17.87 and few.diff is None and few.too_few
    atvg = next(r for r in t.rows if r.key == "baseline_atvg")       # a baseline not run: the paper's row alone
    assert all(c.ours is None for c in atvg.cells) and t.cell("baseline_atvg", "Acc_emo").paper == 17.36
    assert "not run here" in atvg.note and t.notes[-1] == NO_COMPARISON
    assert "Acc_emo" not in [c.key for c in tables["T1_LRW"].columns]
    assert tables["T1_LRW"].cell("baseline_pcavs", "Sync").paper == 7.36 and not tables["T1_LRW"].too_few


def test_every_substitute_is_in_the_captions(built):
    _, _, report, tables = built
    keys = {f.key for f in report.flags}
    assert keys == {"synthetic", "profile", "mediapipe", "ctc", "vgg19", "emotion_fan", "fd", "sync_expert"}
    caption = report.caption(tables["T1_MEAD"])
    for label in ("synthetic data", "MediaPipe", "CTC", "VGG19", "Emotion-FAN", "FD_emotion_fan", "Sync_expert"):
        assert label in caption
    assert "FD_emotion_fan" not in report.caption(tables["T6"])   # T6 has no FID column


def test_missing_model_is_marked_with_its_reason(built):
    _, reports, _, tables = built
    row = next(r for r in tables["T4"].rows if r.key == MISSING)
    assert all(c.ours is None for c in row.cells)
    assert str(reports / "evaluate" / MISSING / "metrics.json") in row.note
    assert any(MISSING in n for n in tables["T4"].notes)


def test_metrics_absent_for_want_of_a_face_say_so(built):
    _, _, _, tables = built
    row = next(r for r in tables["T6"].rows if r.key == FACELESS)
    assert row.cells[0].ours is None and row.cells[1].ours is not None           # PSNR absent, Sync present
    assert any(n.startswith("+L_per: PSNR absent: the landmark detector found no face") for n in tables["T6"].notes)
    assert not any("no face" in n for n in tables["T1_MEAD"].notes)              # models with faces: no note


def test_ablation_and_emotion_tables(built):
    _, _, _, tables = built
    assert [r.key for r in tables["T5"].rows] == ["prompt_only", "prompt_edn", "eat", "no_prompt"]
    assert [r.key for r in tables["T6"].rows] == ["loss_per", "loss_per_lat", "loss_per_lat_sync", "eat"]
    assert [c.key for c in tables["T6"].columns] == ["PSNR", "Sync"]
    assert [r.key for r in tables["T8"].rows] == ["edn_random", "eat"]
    for table, row, column, value in (("T4", "prompts_none", "PSNR", 20.46), ("T4", "eat", "Acc_emo", 84),
                                      ("T5", "prompt_edn", "M-LMD", 2.28), ("T5", "eat", "Sync", 8.22),
                                      ("T6", "loss_per_lat_sync", "PSNR", 21.31), ("T8", "edn_random", "F-LMD", 2.46)):
        assert tables[table].cell(row, column).paper == value            # Tables 4–8 show the paper's numbers
    assert tables["T4"].cell("prompts_none", "SSIM").paper is None       # the paper's ablations have no SSIM
    ablation = tables["T8"].cell("edn_random", "Acc_emo")                # 24 clips: compared
    assert ablation.n == 24 and ablation.diff == pytest.approx(ablation.ours - 76)
    assert tables["T4"].cell(MISSING, "Acc_emo").paper == 57 and tables["T4"].cell(MISSING, "Acc_emo").n is None
    assert [r.key for r in tables["T5"].rows][-1] == "no_prompt"         # the paper's (A): a row of its own
    assert tables["T5"].cell("no_prompt", "Acc_emo").paper == 25 and tables["T5"].cell("no_prompt", "PSNR").ours is None
    t7 = tables["T7"]                      # rows: emotions; columns: models, then the paper's baselines not run
    assert t7.cell("fear", "eat").ours is None and t7.cell("fear", "eat").paper == 16.52
    angry = t7.cell("angry", "eat")        # 2 clips, both recognised: 100 % beside the paper's 100 %, no Δ
    assert angry.ours == 100.0 and angry.paper == 100.0 and angry.n == 2 and angry.diff is None and angry.too_few
    happy = t7.cell("happy", "eat")        # 6 clips, none recognised: compared
    assert happy.ours == 0.0 and happy.n == 6 and happy.diff == pytest.approx(-84.17) and not happy.too_few
    assert t7.cell("average", "eat").paper == 75.43 and t7.cell("average", "eat").n == 24
    assert t7.cell("contempt", "pretrain").paper == 59.66 and t7.cell("contempt", "pretrain").n == 3
    assert t7.cell("happy", "baseline_wav2lip").n == 1 and t7.cell("happy", "baseline_wav2lip").diff is None
    assert [c.key for c in t7.columns] == ["pretrain", "eat", "ground_truth", "baseline_wav2lip",
                                           "baseline_makeittalk", "baseline_avct", "baseline_eamm"]
    assert t7.paper_columns == [True, True, False, True, True, True, True]
    assert t7.cell("neutral", "baseline_eamm").paper == 98.13 and t7.notes[-1] == NO_COMPARISON
    t3 = tables["T3"]
    assert t3.cell("osfv", "same_clip.psnr").ours == 21.0 and t3.cell("copy_source", "same_clip.psnr").ours == 25.9
    psnr = t3.cell("enhanced", "neutral_source.psnr_face")   # the paper's PSNR beside ours: another crop, no Δ
    assert psnr.ours == pytest.approx(19.2) and psnr.paper == 24.49 and psnr.diff is None
    assert t3.cell("osfv", "Acc_emo").paper == 30 and t3.cell("osfv", "Acc_emo").ours is None
    assert any(n.startswith("OSFV latent: ") and "latent_osfv/metrics.json not found" in n for n in t3.notes)
    rebuilt = t3.cell("enhanced", "Acc_emo")  # the evaluate stage's reconstruction, with its n, compared
    assert rebuilt.paper == 86 and rebuilt.n == 24 and rebuilt.diff == pytest.approx(rebuilt.ours - 86)
    assert t3.cell("enhanced", "M-LMD").ours is not None and t3.cell("copy_source", "M-LMD").ours is None
    assert [c.label for c in t3.columns][-2:] == ["Sync_expert", "Acc_emo (%)"]   # the run's key, named as such
    f6 = tables["F6_numbers"]
    assert f6.cell("paper_profile", "mapper").diff == pytest.approx(-0.004)
    assert f6.cell("run_profile", "adaptation").ours == pytest.approx(37.5)
    t2 = tables["T2"]                      # no ratings: the paper's rows alone
    assert [r.key for r in t2.rows] == ["baseline_wav2lip", "baseline_pcavs", "baseline_eamm", "eat", "ground_truth"]
    assert all(c.ours is None for r in t2.rows for c in r.cells) and "No ratings" in t2.notes[1]
    assert t2.cell("eat", "acc_emo").paper == 50 and t2.cell("baseline_pcavs", "quality").paper == 3.19
    assert tables["T4"].notes[0].startswith("Paper value not recorded here for: SSIM, FID")


def test_figures_and_outputs(built):
    _, reports, report, _ = built
    figs = {f.id: f for f in report.figures}
    assert all(figs[k].png and figs[k].png.startswith(b"\x89PNG") for k in ("F5", "F6", "F12"))
    for f in figs.values():
        assert (reports / "figures" / f.file).read_bytes() == f.png
    md = (reports / "paper.md").read_text()
    assert "| EAT | 20.50 | 21.75 | -1.25 |" in md and "![Figure 5" in md
    assert "| 20.83 (n=24) | 75.43 | -54.60 |" in md                      # T1 EAT Acc_emo: n = 24, compared
    assert "| 100.00 (n=2) | 17.87 | —† |" in md and f"- {NO_COMPARISON}" in md    # the baseline: n = 2, no Δ
    assert "| happy | 0.00 (n=6) | 35.00 | -35.00 | 0.00 (n=6) | 84.17 | -84.17 |" in md
    assert "| (A) no prompt (paper only) | — | 20.46 | — |" in md
    html = (reports / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert ('<td>100.00 (n=2)</td><td class="paper">100.00</td><td class="miss">—†</td>' in html
            and '<td>0.00 (n=6)</td><td class="paper">84.17</td><td class="neg">-84.17</td>' in html)
    assert not re.search(r"(src|href)=\"(?!data:|#)", html) and "http" not in html   # self-contained
    tex = (reports / "paper.tex").read_text()
    assert tex.count(r"\begin{table*}") == tex.count(r"\end{table*}") == 10
    assert r"\toprule" in tex and r"\cmidrule(lr){2-4}" in tex and "FD\\_emotion\\_fan" in tex
    assert tex.count("{") == tex.count("}")
    assert r"100.00 (n=2) & 17.87 & ---$^{\dagger}$" in tex and r"20.83 (n=24) & 75.43 & -54.60" in tex
    assert r"$^{\dagger}$ n < 3: no comparison" in tex
    numbers = json.loads((reports / "paper.json").read_text())
    paper = set(PaperNumbers.load().values.values())
    cells = [c for t in numbers["tables"] for r in t["rows"] for c in r["cells"].values()]
    assert {c["paper"] for c in cells if c["paper"] is not None} <= paper   # no paper number from elsewhere
    t7 = next(t for t in numbers["tables"] if t["id"] == "T7")
    assert next(r for r in t7["rows"] if r["key"] == "angry")["cells"]["eat"] == {
        "ours": 100.0, "paper": 100.0, "diff": None, "ci95": None, "n": 2, "too_few": True}


def test_provenance(built):
    root, _, report, _ = built
    p = report.provenance
    assert p.params_sha256 == hashlib.sha256((root / "params.yaml").read_bytes()).hexdigest()
    assert p.data_version == {"data/synth": "abc123.dir", "data/interim/manifest.parquet": "def456"}
    assert p.commit == "unknown" and p.dirty is None      # the fixture folder is no git repository
    assert "abc123.dir" in (root / "reports" / "paper.md").read_text()
    assert p.machine.endswith("CPU") and p.run_time == ""      # no reports/timings.json in the fixture


def test_run_time_sums_the_stages_that_ran(tmp_path):
    from eat.report.provenance import run_time

    (tmp_path / "timings.json").write_text(json.dumps({"stages": {
        "synth": {"seconds": 180.0, "outcome": "ran", "cpu": "AVX2"},
        "ingest": {"seconds": 60.0, "outcome": "ran", "cpu": "AVX2"},
        "report": {"seconds": 1.0, "outcome": "cached", "cpu": "AVX2"}}}))
    assert run_time(tmp_path / "timings.json") == "2 stages took 4 min of wall time (AVX2 CPU; timings.json)"
    assert run_time(tmp_path / "absent.json") == ""


def test_user_study_rows_meet_the_papers(tmp_path):
    """Table 2 with ratings: a baseline folder's name finds the paper's row, Acc_emo shows its judgements n and is
    compared only from 3 on, the paper's methods without ratings keep rows of their own."""
    reports = write_fixture(tmp_path)
    stat = {"mean": 3.5, "ci95": 0.4, "n": 8}
    write(reports / "user_study" / "table2.json", {"raters": 2, "videos_per_method": 4, "notes": [], "methods": {
        "eat": {"lipsync": stat, "quality": stat, "acc_emo": {"mean": 50.0, "ci95": 35.0, "n": 2}},
        "PC-AVS": {"lipsync": stat, "quality": stat, "acc_emo": {"mean": 25.0, "ci95": 20.0, "n": 8}}}})
    report = build_report(reports, params_path=tmp_path / "params.yaml", baselines_dir=None, repo=tmp_path,
                          dvc_lock=tmp_path / "dvc.lock", shares=SHARES)
    t2 = next(t for t in report.tables if t.id == "T2")
    assert [r.label for r in t2.rows] == ["EAT", "PC-AVS (baseline)", "Wav2Lip (paper only)", "EAMM (paper only)",
                                          "Ground Truth"]
    assert t2.cell("eat", "lipsync").diff == pytest.approx(3.5 - 3.99)
    assert t2.cell("eat", "acc_emo").n == 2 and t2.cell("eat", "acc_emo").diff is None
    assert t2.cell("PC-AVS", "acc_emo").paper == 20 and t2.cell("PC-AVS", "acc_emo").diff == pytest.approx(5.0)
    assert "| 25.00 ± 20.00 (n=8) | 20.00 | +5.00 |" in (reports / "paper.md").read_text()
    assert t2.notes[-1] == NO_COMPARISON and "Ground Truth: no ratings collected." in t2.notes


def test_report_without_any_metrics_still_builds(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"adaptation_variants": {"eat": {}}}))
    report = build_report(tmp_path / "reports", params_path=tmp_path / "params.yaml", paper_profile=None,
                          baselines_dir=None, repo=tmp_path, dvc_lock=tmp_path / "dvc.lock")
    t1 = next(t for t in report.tables if t.id == "T1_MEAD")
    assert all(r.note for r in t1.rows) and t1.cell("eat", "PSNR").paper == 21.75
    assert "paper-profile shares not computed" in next(t for t in report.tables if t.id == "F6_numbers").notes[0]
    assert "—" in (tmp_path / "reports" / "paper.md").read_text()


def test_paper_profile_shares_are_fig6():
    from eat.report.shares import paper_profile_shares

    shares = paper_profile_shares(REPO / "params.yaml", REPO / "configs" / "paper.yaml")
    paper = PaperNumbers.load()
    for part in ("mapper", "edn", "eam", "adaptation"):
        assert shares[part] == pytest.approx(paper.get("F6", "paper_profile", part), abs=0.01)


def test_html_report_renders_in_headless_chromium(built, tmp_path):
    from tests.chromium import INSTALL, find_chromium, screenshot

    if find_chromium() is None:
        pytest.skip(f"headless Chromium not installed (Debian: {INSTALL})")
    _, reports, _, _ = built
    png = tmp_path / "report.png"
    screenshot(reports / "index.html", png, height=1200)
    import imageio.v3 as iio

    image = iio.imread(png)
    assert image.shape[:2] == (1200, 1280) and image.std() > 10   # something drawn, not a blank page


def test_ground_truth_acc_emo_counts_every_test_clip_when_the_evaluation_says_so(tmp_path):
    """evaluate scores the Ground Truth row's Acc_emo on every MEAD test clip (``MEAD/acc_emo_clips``, rows in
    ``mead_emotion.parquet``), not only the sample the generated models are scored on: n follows those rows."""
    reports = write_fixture(tmp_path)
    gt = reports / "evaluate" / "ground_truth"
    metrics = json.loads((gt / "metrics.json").read_text())
    write(gt / "metrics.json", metrics | {"MEAD/Acc_emo": 0.5, "MEAD/Acc_emo_happy": 0.25, "MEAD/acc_emo_clips": 48})
    rows = [{"uid": f"MEAD__M003__{e}__{j:03d}", "emotion": e, "emotion_pred": e} for e in EMOTIONS for j in range(6)]
    pd.DataFrame(rows).to_parquet(gt / "mead_emotion.parquet", index=False)
    build_report(reports, params_path=tmp_path / "params.yaml", baselines_dir=None, repo=tmp_path,
                 dvc_lock=tmp_path / "dvc.lock", shares=SHARES)
    md = (reports / "paper.md").read_text()
    t1_gt = next(line for line in md.splitlines() if line.startswith("| Ground Truth |"))
    assert "50.00 (n=48)" in t1_gt
    t7_happy = next(line for line in md.splitlines() if line.startswith("| happy |"))
    assert "25.00 (n=6)" in t7_happy
