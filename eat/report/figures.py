"""Figures 5, 6 and 12 as PNG bytes (matplotlib, Agg): tuning efficiency curves, parameter shares, the
emotion-interpolation strip written by the adaptation stage."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from eat.report.inputs import RunResults  # noqa: E402
from eat.report.substitutes import Flag, for_table  # noqa: E402
from eat.report.table_model import Table  # noqa: E402

CURVES = (("data_25", "25 % of MEAD train"), ("data_50", "50 %"), ("eat", "100 % (EAT)"))


@dataclass
class Figure:
    id: str
    title: str
    caption: str
    file: str                      # name under reports/figures/
    png: bytes | None              # None: could not be drawn (see notes)
    notes: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def figure5(results: RunResults, flags: list[Flag]) -> Figure:
    """Held-out Acc_emo (%) against training hours for 25 / 50 / 100 % of the adaptation data."""
    notes, drawn = [], []
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for variant, name in CURVES:
        loaded = results.curves.get(variant)
        if loaded is None or not loaded.ok:
            notes.append(f"{name}: {loaded.reason if loaded else variant + ' is not a variant of this run'}")
            continue
        curve = loaded.data.sort_values("seconds")
        ax.plot(curve.seconds / 3600.0, 100.0 * curve.acc_emo, marker="o", label=name)
        drawn.append(variant)
    ax.set_xlabel("adaptation time (hours)")
    ax.set_ylabel("held-out Acc_emo (%)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(frameon=False)
    png = _png(fig) if drawn else (plt.close(fig) or None)
    notes.append("Paper: a plot only; its values are not recorded here.")
    return Figure("F5", "Figure 5: tuning efficiency",
                  "Emotion accuracy of the adapted model on held-out clips along adaptation, by share of the "
                  "training data (reports/adaptation/<variant>/curve.csv).", "F5_tuning_efficiency.png", png, notes,
                  for_table(flags, "F5"))


def figure6(shares: Table) -> Figure:
    """Grouped bars: the paper's shares, our paper-profile shares, this run's shares (from the F6 table)."""
    keys = [c.key for c in shares.columns]
    labels = [c.label for c in shares.columns]
    series = [("paper (Fig. 6)", [shares.rows[0].cells[i].paper for i in range(len(keys))])]
    series += [(r.label.split(" (")[0], [c.ours for c in r.cells]) for r in shares.rows]
    series = [(n, v) for n, v in series if any(x is not None for x in v)]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(keys))]
        ys = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, labels=[f"{v:.2f}" if v is not None else "—" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(keys)), labels)
    ax.set_ylabel("% of all parameters")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return Figure("F6", "Figure 6: parameter shares of the adaptation modules",
                  "Share of the whole network's parameters trained in emotional adaptation: the paper's numbers, "
                  "our networks at configs/paper.yaml, and at this run's profile.", "F6_parameter_shares.png",
                  _png(fig), list(shares.notes))


def figure12(results: RunResults, flags: list[Flag]) -> Figure:
    path = results.interpolation
    png = path.read_bytes() if path is not None else None
    notes = [] if png else [f"{results.reports_dir / 'emotion_control' / 'interpolation.png'} not found "
                            "(written by the adaptation stage)"]
    return Figure("F12", "Figure 12: emotion interpolation",
                  "Frames generated while the emotion code moves between two emotions' latent codes.",
                  "F12_interpolation.png", png, notes, for_table(flags, "F12"))


def build_figures(results: RunResults, flags: list[Flag], shares: Table) -> list[Figure]:
    return [figure5(results, flags), figure6(shares), figure12(results, flags)]
