"""HTML evaluation reports with plots (matplotlib, Agg backend: no display needed).

A report is a folder: ``index.html`` (figures as tables, plots as ``<img>``) plus one PNG per plot and
``figures.json`` (the same object ``--json`` prints).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are written on servers without a display

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from faceleads.evaluation import metrics

MAX_CURVE_POINTS = 4000
DPI = 100


def _thin(curve: metrics.ErrorCurve) -> metrics.ErrorCurve:
    """At most MAX_CURVE_POINTS points (millions of distinct scores add nothing to a plot)."""
    n = curve.thresholds.size
    if n <= MAX_CURVE_POINTS:
        return curve
    # Keep points evenly spread on log axes of both rates (where DET and ROC plots are read), plus a
    # linear spread: uniform thinning alone would drop the sparse low-FMR end of the curve.
    grid = np.logspace(-9, 0, MAX_CURVE_POINTS // 4)
    by_fmr = np.searchsorted(curve.fmr, grid)  # fmr ascends along the curve
    by_fnmr = curve.fnmr.size - np.searchsorted(curve.fnmr[::-1], grid)  # fnmr descends
    linear = np.linspace(0, n - 1, MAX_CURVE_POINTS // 4).astype(np.int64)
    idx = np.unique(np.clip(np.r_[0, by_fmr, by_fmr - 1, by_fnmr, by_fnmr - 1, linear, n - 1], 0, n - 1))
    return metrics.ErrorCurve(curve.thresholds[idx], curve.fmr[idx], curve.tmr[idx])


def _floored(rates: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rates of 0 moved to half the smallest positive rate: a zero cannot sit on a log axis."""
    positive = rates[rates > 0]
    floor = float(positive.min()) / 2 if positive.size else 1e-6
    return np.where(rates > 0, rates, floor)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_roc(curves: dict[str, metrics.ErrorCurve], path: Path) -> Path:
    """ROC: true accept rate against false accept rate (log scale), one line per named curve."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in curves.items():
        c = _thin(curve)
        ax.step(_floored(c.fmr), c.tmr, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (FAR / FMR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_det(curves: dict[str, metrics.ErrorCurve], path: Path) -> Path:
    """DET: false non-match rate against false match rate, both on log scales."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in curves.items():
        c = _thin(curve)
        ax.plot(_floored(c.fmr), _floored(c.fnmr), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_histograms(genuine: npt.ArrayLike, impostor: npt.ArrayLike, thresholds: dict[str, float], path: Path) -> Path:
    """Genuine and impostor score densities, with vertical lines at the named thresholds."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = [float(b) for b in np.linspace(-1.0, 1.0, 101)]
    ax.hist(np.asarray(genuine), bins=bins, density=True, alpha=0.6, label="genuine (same person)")
    ax.hist(np.asarray(impostor), bins=bins, density=True, alpha=0.6, label="impostor (different people)")
    for i, (name, t) in enumerate(thresholds.items()):
        ax.axvline(t, color=f"C{i + 2}", linestyle="--", label=f"{name} = {t:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title("Score distributions")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_cmc(mate_ranks: npt.ArrayLike, max_rank: int, path: Path) -> Path:
    """CMC: share of mated searches with the mate at rank <= k, for k = 1..max_rank."""
    ks = list(range(1, max_rank + 1))
    hits = metrics.cmc(mate_ranks, ks)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(ks, np.array([np.nan if hits[k] is None else hits[k] for k in ks], dtype=float), marker=".")
    ax.set_xlabel("rank k")
    ax.set_ylabel("identification rate (mate in top k)")
    ax.set_title("CMC")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_differentials(groups: dict[str, Any], rates: Sequence[str], path: Path, title: str) -> Path:
    """Per-group error rates at the global threshold (log scale), one bar group per rate."""
    per_group: dict[str, dict[str, Any]] = groups["per_group"]
    floor = int(groups.get("min_trials", 1))
    # Groups too small to enter the ratios are left off the plot too (they stay in the tables).
    names = [
        n for n, row in per_group.items() if max((v for v in row.values() if isinstance(v, int)), default=0) >= floor
    ]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    width = 0.8 / max(1, len(rates))
    x = np.arange(len(names))
    for i, rate in enumerate(rates):
        vals = [per_group[n].get(rate) for n in names]
        heights = [v if v else np.nan for v in vals]
        # Bootstrap intervals (when computed) as error bars; an unbounded or missing end draws no bar.
        intervals = [per_group[n].get(f"{rate}_ci") for n in names]
        errors = None
        if any(intervals):
            pairs = list(zip(heights, intervals, strict=True))
            lows = [h - ci[0] if ci and ci[0] is not None and np.isfinite(h) else 0.0 for h, ci in pairs]
            highs = [ci[1] - h if ci and ci[1] is not None and np.isfinite(h) else 0.0 for h, ci in pairs]
            errors = np.array([lows, highs])
        bars = ax.bar(x + i * width, heights, width, label=rate.upper(), yerr=errors, capsize=3)
        for bar, v in zip(bars, vals, strict=True):
            label = "n/a" if v is None else f"{v:.2g}"
            ax.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height() if v else 0),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        overall = groups["overall"].get(rate)
        if overall:
            ax.axhline(overall, color=f"C{i}", linestyle=":", linewidth=1)
    ax.set_xticks(x + width * (len(rates) - 1) / 2, names)
    if any(per_group[n].get(r) for n in names for r in rates):
        ax.set_yscale("log")
    ax.set_ylabel("rate at the global threshold (dotted: overall; bars: 95% CI)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _table(obj: Any) -> str:
    """A nested dict as nested HTML tables."""
    if isinstance(obj, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_table(v)}</td></tr>" for k, v in obj.items())
        return f"<table>{rows}</table>"
    if isinstance(obj, list):
        return "<br>".join(_table(v) for v in obj) or "&mdash;"
    if isinstance(obj, float):
        return f"{obj:.6g}"
    if obj is None:
        return "n/a"
    return html.escape(str(obj))


def write_report(directory: Path, title: str, figures: dict[str, Any], plots: Sequence[Path], notes: str) -> Path:
    """Write ``index.html`` and ``figures.json`` into ``directory`` (plots already saved there)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "figures.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    images = "".join(f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"></figure>' for p in plots)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1300px; }}
table {{ border-collapse: collapse; margin: 2px 0; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; font-size: 13px; }}
figure {{ display: inline-block; margin: 0.4em; }}
figure img {{ width: 580px; max-width: 100%; }}
.note {{ background: #f4f4f4; padding: 0.6em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(notes)}</p>
{images}
<h2>Figures</h2>
{_table(figures)}
</body></html>
"""
    index = directory / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
