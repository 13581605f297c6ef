"""The static rating page of the user study: one self-contained HTML file (no CDN, no server) beside a
``videos/`` folder. Per video: lip-sync 1–5, quality 1–5, and the emotion among the eight. Answers are kept in
the browser's localStorage while the rater works and saved as ``ratings_<rater>.json`` (a Blob download):

    {"study_id": str, "rater": str, "saved": ISO time,
     "ratings": [{"video": blind name, "lipsync": 1–5 | null, "quality": 1–5 | null, "emotion": str | null}]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>__TITLE__</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:20px auto;padding:0 14px;color:#1d232a}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 0;z-index:1}
.item{display:flex;gap:18px;border-bottom:1px solid #eee;padding:14px 0;align-items:flex-start}
.item video{width:320px;height:320px;background:#111}
.item.done{background:#f3fbf4}
fieldset{border:none;margin:0 0 8px;padding:0} legend{font-weight:600;font-size:14px}
label{margin-right:10px;white-space:nowrap} .name{color:#57606a;font-size:12px}
button{font-size:15px;padding:6px 14px} #progress{margin-left:12px}
</style></head><body>
<header><h1 style="font-size:20px;margin:0 0 6px">__TITLE__</h1>
<p style="margin:0 0 6px">Watch each video with sound. Rate <b>lip-sync</b> (do the lips match the speech?) and
<b>quality</b> (how real does the video look?) from 1 (bad) to 5 (excellent), and pick the <b>emotion</b> you see.
Your answers stay in this browser until you press <i>Save ratings</i>, which downloads a file: send it back.</p>
<label>Your name or id: <input id="rater" autocomplete="off"></label>
<button id="save" type="button">Save ratings</button><span id="progress"></span></header>
<main id="items"></main>
<script id="study" type="application/json">__STUDY__</script>
<script>
"use strict";
const STUDY = JSON.parse(document.getElementById("study").textContent);
const STORE = "eat_user_study_" + STUDY.study_id;
const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
const answers = saved.answers || {};

function radios(video, field, values, labels) {
  const set = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = {lipsync: "Lip-sync", quality: "Quality", emotion: "Emotion"}[field];
  set.appendChild(legend);
  values.forEach((value, i) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = video + "__" + field; input.value = value;
    input.dataset.video = video; input.dataset.field = field;
    if (answers[video] && String(answers[video][field]) === String(value)) input.checked = true;
    input.addEventListener("change", record);
    label.appendChild(input); label.appendChild(document.createTextNode(" " + labels[i]));
    set.appendChild(label);
  });
  return set;
}

function complete(video) {
  const a = answers[video] || {};
  return a.lipsync != null && a.quality != null && a.emotion != null;
}

function record(event) {
  const {video, field} = event.target.dataset;
  const value = field === "emotion" ? event.target.value : Number(event.target.value);
  answers[video] = Object.assign(answers[video] || {}, {[field]: value});
  persist(); refresh();
}

function persist() {
  localStorage.setItem(STORE, JSON.stringify({rater: document.getElementById("rater").value, answers}));
}

function refresh() {
  let done = 0;
  for (const video of STUDY.videos) {
    const ok = complete(video);
    done += ok;
    document.getElementById("item-" + video).classList.toggle("done", ok);
  }
  document.getElementById("progress").textContent = done + " / " + STUDY.videos.length + " rated";
}

function ratingsJSON() {
  return JSON.stringify({
    study_id: STUDY.study_id, rater: document.getElementById("rater").value.trim(),
    saved: new Date().toISOString(),
    ratings: STUDY.videos.map(video => Object.assign({video, lipsync: null, quality: null, emotion: null},
                                                     answers[video] || {}))}, null, 1);
}

function save() {
  const rater = document.getElementById("rater").value.trim();
  if (!rater) { alert("Please enter your name or id first."); return; }
  const blob = new Blob([ratingsJSON()], {type: "application/json"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "ratings_" + rater.replace(/[^A-Za-z0-9_-]+/g, "_") + ".json";
  document.body.appendChild(link); link.click(); link.remove();
}

const scale = [1, 2, 3, 4, 5];
const main = document.getElementById("items");
STUDY.videos.forEach((video, i) => {
  const item = document.createElement("section");
  item.className = "item"; item.id = "item-" + video;
  const player = document.createElement("video");
  player.src = "videos/" + video + ".mp4"; player.controls = true; player.preload = "metadata";
  const form = document.createElement("div");
  const name = document.createElement("div");
  name.className = "name"; name.textContent = (i + 1) + ". " + video;
  form.appendChild(name);
  form.appendChild(radios(video, "lipsync", scale, scale));
  form.appendChild(radios(video, "quality", scale, scale));
  form.appendChild(radios(video, "emotion", STUDY.emotions, STUDY.emotions));
  item.appendChild(player); item.appendChild(form); main.appendChild(item);
});
const raterInput = document.getElementById("rater");
raterInput.value = saved.rater || "";
raterInput.addEventListener("input", persist);
document.getElementById("save").addEventListener("click", save);
refresh();
</script></body></html>
"""


def rating_page(study_id: str, videos: Sequence[str], emotions: Sequence[str],
                title: str = "Talking-head user study") -> str:
    """The page for ``videos`` (blind names; files ``videos/<name>.mp4`` beside the page)."""
    study = json.dumps({"study_id": study_id, "videos": list(videos), "emotions": list(emotions)})
    return TEMPLATE.replace("__TITLE__", escape(title)).replace("__STUDY__", study.replace("</", "<\\/"))
