"""The paper report (eat/report) on a fixture of the pipeline's metric files: every number comes from a file
(ours) or paper_numbers.yaml (the paper's), differences are ours − paper, substitutes are flagged, missing
inputs are explained, and the three renderings are complete and self-contained."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from eat.report.build import build_report
from eat.report.paper_numbers import PaperNumbers
from tests.conftest import REPO
from tests.report_fixture import FACELESS, MISSING, write_fixture

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
    assert len(paper.values) == 41   # T1 MEAD 16, T1 LRW 13, T7 8, F6 4


def test_table1_is_ours_beside_the_paper(built):
    _, _, _, tables = built
    t = tables["T1_MEAD"]
    eat = t.cell("eat", "PSNR")            # fixture: model index 2 → 20 + 0.5
    assert eat.ours == pytest.approx(20.5) and eat.paper == 21.75 and eat.diff == pytest.approx(-1.25)
    assert t.cell("eat", "Acc_emo").ours == pytest.approx(25.0)        # fractions → percent
    assert t.cell("ground_truth", "Acc_emo").paper == 84.37
    fd = t.cell("eat", "FID")              # a substitute feature space: paper shown, no difference
    assert fd.ours == 38.0 and fd.paper == 19.69 and fd.diff is None
    assert [c.label for c in t.columns][2:4] == ["FD_emotion_fan", "Sync_expert"]
    assert [r.label for r in t.rows] == ["Pretrain", "EAT", "Ground Truth", "wav2lip (baseline)"]
    assert "Acc_emo" not in [c.key for c in tables["T1_LRW"].columns]


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
    assert [r.key for r in tables["T5"].rows] == ["prompt_only", "prompt_edn", "eat"]
    assert [r.key for r in tables["T6"].rows] == ["loss_per", "loss_per_lat", "loss_per_lat_sync", "eat"]
    assert [c.key for c in tables["T6"].columns] == ["PSNR", "Sync"]
    assert [r.key for r in tables["T8"].rows] == ["edn_random", "eat"]
    assert not tables["T4"].has_paper
    t7 = tables["T7"]                      # rows: emotions; columns: models
    assert t7.cell("fear", "eat").ours is None and t7.cell("fear", "eat").paper == 16.52
    assert t7.cell("angry", "eat").ours == 100.0 and t7.cell("angry", "eat").diff == 0.0
    assert t7.cell("average", "eat").paper is None and t7.cell("contempt", "pretrain").paper is None
    assert t7.paper_columns == [False, True, False, False]
    t3 = tables["T3"]
    assert t3.cell("osfv", "same_clip.psnr").ours == 21.0 and t3.cell("copy_source", "same_clip.psnr").ours == 25.9
    f6 = tables["F6_numbers"]
    assert f6.cell("paper_profile", "mapper").diff == pytest.approx(-0.004)
    assert f6.cell("run_profile", "adaptation").ours == pytest.approx(37.5)
    assert tables["T2"].rows == [] and "No ratings" in tables["T2"].notes[1]
    assert tables["T4"].notes[0].startswith("Paper values not recorded here")


def test_figures_and_outputs(built):
    _, reports, report, _ = built
    figs = {f.id: f for f in report.figures}
    assert all(figs[k].png and figs[k].png.startswith(b"\x89PNG") for k in ("F5", "F6", "F12"))
    for f in figs.values():
        assert (reports / "figures" / f.file).read_bytes() == f.png
    md = (reports / "paper.md").read_text()
    assert "| EAT | 20.50 | 21.75 | -1.25 |" in md and "![Figure 5" in md
    html = (reports / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r"(src|href)=\"(?!data:|#)", html) and "http" not in html   # self-contained
    tex = (reports / "paper.tex").read_text()
    assert tex.count(r"\begin{table*}") == tex.count(r"\end{table*}") == 10
    assert r"\toprule" in tex and r"\cmidrule(lr){2-4}" in tex and "FD\\_emotion\\_fan" in tex
    assert tex.count("{") == tex.count("}")
    numbers = json.loads((reports / "paper.json").read_text())
    paper = set(PaperNumbers.load().values.values())
    cells = [c for t in numbers["tables"] for r in t["rows"] for c in r["cells"].values()]
    assert {c["paper"] for c in cells if c["paper"] is not None} <= paper   # no paper number from elsewhere


def test_provenance(built):
    root, _, report, _ = built
    p = report.provenance
    assert p.params_sha256 == hashlib.sha256((root / "params.yaml").read_bytes()).hexdigest()
    assert p.data_version == {"data/synth": "abc123.dir", "data/interim/manifest.parquet": "def456"}
    assert p.commit == "unknown" and p.dirty is None      # the fixture folder is no git repository
    assert "abc123.dir" in (root / "reports" / "paper.md").read_text()


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
