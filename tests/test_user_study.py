"""Table 2's user study kit: clip selection, blind assembly and key, the rating page in headless Chromium (filled
through its form, the saved JSON read back), and Table 2's intervals on known answers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from eat.config import EMOTIONS
from eat.user_study.assemble import assemble
from eat.user_study.ratings import mean_ci, table2, to_markdown, wilson
from tests.chromium import INSTALL, Page, find_chromium

METHODS = ("ground_truth", "pretrain", "eat")


def manifest(identities: list[str]) -> pd.DataFrame:
    """MEAD test clips: every identity × emotion at levels 1 and 3, plus a train clip and an LRW clip."""
    rows = [{"uid": f"MEAD__{i}__{e}__level_{lv}__001", "dataset": "MEAD", "identity": i, "emotion": e,
             "level": lv, "split": "test"} for i in identities for e in EMOTIONS for lv in (1, 3)]
    rows += [{"uid": "MEAD__M005__angry__level_3__001", "dataset": "MEAD", "identity": "M005", "emotion": "angry",
              "level": 3, "split": "train"},
             {"uid": "LRW__ABOUT__test__00001", "dataset": "LRW", "identity": "s1", "emotion": "neutral",
              "level": None, "split": "test"}]
    return pd.DataFrame(rows)


def study_fixture(tmp_path, identities: list[str], methods=METHODS) -> tuple:
    table = manifest(identities)
    table.to_parquet(tmp_path / "manifest.parquet")
    folders = {}
    for m in methods:
        folders[m] = tmp_path / "videos" / m
        folders[m].mkdir(parents=True)
        for uid in table.uid:
            (folders[m] / f"{uid}.mp4").write_bytes(f"{m}:{uid}".encode())   # content names its source
    return folders, tmp_path / "manifest.parquet"


def test_paper_size_study_is_blind_balanced_and_keyed(tmp_path):
    folders, man = study_fixture(tmp_path, ["M003", "M030", "W009", "W015", "W021"])
    s = assemble(folders, man, tmp_path / "study", seed=7)
    assert s["videos_per_method"] == 32 and s["notes"] == []
    assert s["identities"] == ["M003", "M030", "W009", "W015"]
    key = s["key"]
    assert len(key) == 3 * 32
    for blind, item in key.items():
        # the copied file is that method's video of that clip; the blind name says neither
        copied = (tmp_path / "study" / "videos" / f"{blind}.mp4").read_bytes()
        assert copied == f"{item['method']}:{item['uid']}".encode()
        assert item["level"] == 3 and item["method"] not in blind and item["uid"] not in blind
    per_method = {m: sorted(v["uid"] for v in key.values() if v["method"] == m) for m in METHODS}
    assert per_method["ground_truth"] == per_method["pretrain"] == per_method["eat"]
    assert json.loads((tmp_path / "study" / "key.json").read_text())["key"] == key
    html = (tmp_path / "study" / "index.html").read_text()
    assert "ground_truth" not in html and "MEAD__" not in html and "http" not in html   # blind, no CDN


def test_same_seed_same_order_other_seed_other_order(tmp_path):
    folders, man = study_fixture(tmp_path, ["M003", "W009"])
    a = assemble(folders, man, tmp_path / "a", seed=1)["key"]
    b = assemble(folders, man, tmp_path / "b", seed=1)["key"]
    c = assemble(folders, man, tmp_path / "c", seed=2)["key"]
    assert a == b and a != c and sorted(a.values(), key=str) == sorted(c.values(), key=str)


def test_embedded_data_gives_fewer_videos_and_says_so(tmp_path):
    folders, man = study_fixture(tmp_path, ["M003", "W009"])
    folders["wav2lip"] = tmp_path / "missing"
    s = assemble(folders, man, tmp_path / "study", seed=0)
    assert s["videos_per_method"] == 16 and s["methods"] == list(METHODS)
    assert any("16 videos per method" in n for n in s["notes"])
    assert any("wav2lip" in n for n in s["notes"])


def test_intervals_known_answers():
    s = mean_ci([1, 2, 3, 4, 5])
    assert s["mean"] == 3 and s["ci95"] == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    w = wilson(8, 10)   # Wilson 95 %: [0.4902, 0.9433]
    assert w["mean"] == pytest.approx(80) and w["low"] == pytest.approx(49.02, abs=0.01)
    assert w["high"] == pytest.approx(94.33, abs=0.01)
    assert wilson(0, 0)["mean"] is None


def write_ratings(path, study_id, rater, key, lipsync, quality, correct):
    ratings = [{"video": b, "lipsync": lipsync[v["method"]], "quality": quality[v["method"]],
                "emotion": v["emotion"] if correct[v["method"]] else ("angry" if v["emotion"] != "angry" else "sad")}
               for b, v in key.items()]
    path.write_text(json.dumps({"study_id": study_id, "rater": rater, "ratings": ratings}))


def test_table2_from_rating_files(tmp_path):
    folders, man = study_fixture(tmp_path, ["M003", "W009"])
    s = assemble(folders, man, tmp_path / "study", seed=0)
    ratings = tmp_path / "study" / "ratings"
    for rater, shift in (("r1", 0), ("r2", 1)):
        write_ratings(ratings / f"{rater}.json", s["study_id"], rater, s["key"],
                      {"ground_truth": 4 + shift, "pretrain": 2 + shift, "eat": 3 + shift},
                      {"ground_truth": 5, "pretrain": 3, "eat": 4}, {"ground_truth": True, "pretrain": False,
                                                                     "eat": True})
    (ratings / "other.json").write_text(json.dumps({"study_id": "else", "ratings": []}))
    t = table2(ratings, tmp_path / "study" / "key.json")
    assert t["raters"] == 2
    assert t["methods"]["eat"]["lipsync"]["mean"] == pytest.approx(3.5)
    assert t["methods"]["eat"]["lipsync"]["n"] == 32
    assert t["methods"]["ground_truth"]["quality"] == {"mean": 5.0, "ci95": 0.0, "n": 32}
    assert t["methods"]["eat"]["acc_emo"]["mean"] == 100 and t["methods"]["pretrain"]["acc_emo"]["mean"] == 0
    assert any("other.json" in n for n in t["notes"])
    assert "| eat | 3.50 ± " in to_markdown(t)


@pytest.fixture(scope="module")
def chromium():
    if find_chromium() is None:
        pytest.skip(f"headless Chromium not installed (Debian: {INSTALL})")


def test_rating_page_in_headless_chromium(tmp_path, chromium):
    """The page lists every video, has no script error, and saves what was clicked as this study's JSON."""
    folders, man = study_fixture(tmp_path, ["M003", "M030", "W009", "W015"], methods=("eat",))
    s = assemble(folders, man, tmp_path / "study", seed=3)
    blinds = list(s["key"])
    with Page() as page:
        page.open((tmp_path / "study" / "index.html").as_uri())
        assert page.eval("document.querySelectorAll('section.item').length") == 32
        assert page.eval("document.querySelectorAll('section.item video').length") == 32
        assert page.eval("document.getElementById('progress').textContent") == "0 / 32 rated"
        # answer every video through the form: lip-sync and quality from the index, the true emotion
        answers = {b: {"lipsync": 1 + i % 5, "quality": 5 - i % 5, "emotion": s["key"][b]["emotion"]}
                   for i, b in enumerate(blinds)}
        page.eval(f"""(() => {{ const a = {json.dumps(answers)};
            for (const [v, r] of Object.entries(a)) for (const [f, x] of Object.entries(r))
              document.querySelector(`input[name="${{v}}__${{f}}"][value="${{x}}"]`).click();
            document.getElementById('rater').value = 'tester 1'; }})()""")
        assert page.eval("document.getElementById('progress').textContent") == "32 / 32 rated"
        # catch the Blob the Save button downloads
        page.eval("""window.__saved = new Promise(ok => { const make = URL.createObjectURL;
            URL.createObjectURL = b => { b.text().then(ok); return make(b); }; });
            HTMLAnchorElement.prototype.click = function () { window.__name = this.download; };""")
        page.eval("document.getElementById('save').click()")
        saved = json.loads(page.eval("window.__saved"))
        assert page.eval("window.__name") == "ratings_tester_1.json"
        assert page.errors == []
    assert saved["study_id"] == s["study_id"] and saved["rater"] == "tester 1"
    assert {r["video"]: {k: r[k] for k in ("lipsync", "quality", "emotion")} for r in saved["ratings"]} == answers
    (tmp_path / "study" / "ratings" / "tester.json").write_text(json.dumps(saved))
    t = table2(tmp_path / "study" / "ratings", tmp_path / "study" / "key.json")
    assert t["methods"]["eat"]["acc_emo"]["mean"] == 100 and t["methods"]["eat"]["lipsync"]["n"] == 32
