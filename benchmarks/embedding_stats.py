"""Population statistics of real face templates, for realistic synthetic galleries in the scale benchmark.

Usage::

    .venv/bin/python benchmarks/embedding_stats.py [--faces ../shared/faces/lfw-dev] [--out benchmarks/data/...]

Embeds every LFW development-view image (the most prominent face, through the evaluation template cache) and
writes the mean and the square roots of the between-identity and within-identity covariance matrices of the
unit templates to an ``.npz`` file (float16 factors, ~1 MB). ``benchmarks/search_scale.py --distribution
arcface`` draws identities from ``mean + B z`` and their photos from ``identity + W z`` (then normalises), a
Gaussian (PLDA-like) model with the real templates' anisotropy, so the recall of a compressed index is measured
on data shaped like real ArcFace embeddings rather than on isotropic random vectors.

The file holds only aggregate second-order statistics of ~5,000 templates (no template, no identity); it cannot
be turned back into anyone's template. Prints real vs synthetic genuine/impostor score statistics as a check.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceleads.config import Settings  # noqa: E402
from faceleads.evaluation.templates import TemplateExtractor  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "data" / "lfw_dev_w600k_mbf_stats.npz"


def sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues from noise clipped)."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def score_stats(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Mean/std of genuine (same label) and impostor (random different-label) cosine scores."""
    genuine = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if rows.size >= 2:
            s = x[rows] @ x[rows].T
            genuine.extend(s[np.triu_indices(rows.size, 1)].tolist())
    a, b = rng.integers(0, x.shape[0], (2, 200_000))
    keep = labels[a] != labels[b]
    impostor = np.einsum("ij,ij->i", x[a[keep]], x[b[keep]])
    g = np.asarray(genuine)
    return {
        "genuine_mean": round(float(g.mean()), 4),
        "genuine_std": round(float(g.std()), 4),
        "impostor_mean": round(float(impostor.mean()), 4),
        "impostor_std": round(float(impostor.std()), 4),
        "impostor_p99_99": round(float(np.quantile(impostor, 0.9999)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces" / "lfw-dev")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    with (args.faces / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    paths = [args.faces / r["path"] for r in rows]
    names = [r["identity"] for r in rows]
    templates = TemplateExtractor(Settings()).templates(paths, "LFW-dev")
    keep = [i for i, p in enumerate(paths) if templates[p].ok]
    x = np.stack([np.asarray(templates[paths[i]].embedding, np.float32) for i in keep]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    _, labels = np.unique([names[i] for i in keep], return_inverse=True)

    mean = x.mean(axis=0)
    counts = np.bincount(labels)
    centres = np.zeros((counts.size, x.shape[1]))
    np.add.at(centres, labels, x)
    centres /= counts[:, None]
    # Within: deviations from the identity mean, over identities with >= 2 photos (unbiased: n / (n - 1)).
    multi = counts[labels] >= 2
    dev = (x - centres[labels])[multi] * np.sqrt(counts[labels][multi] / (counts[labels][multi] - 1))[:, None]
    within = dev.T @ dev / dev.shape[0]
    # Between: covariance of all templates minus the within part (identity means of 1-2 photos are noisy).
    total = np.cov(x, rowvar=False)
    between_cov = total - within
    values, vectors = np.linalg.eigh(between_cov)
    between = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        mean=mean.astype(np.float32),
        between=between.astype(np.float16),
        within=sqrt_psd(within).astype(np.float16),
        n_templates=np.int64(x.shape[0]),
        n_identities=np.int64(counts.size),
    )

    # Check: the synthetic model reproduces the real score distributions.
    rng = np.random.default_rng(7)
    n_id = 3000
    ids = rng.standard_normal((n_id, x.shape[1])) @ between + mean
    syn_labels = np.repeat(np.arange(n_id), 2)
    syn = ids[syn_labels] + rng.standard_normal((2 * n_id, x.shape[1])) @ sqrt_psd(within)
    syn /= np.linalg.norm(syn, axis=1, keepdims=True)
    iso = rng.standard_normal((2 * n_id, x.shape[1]))
    iso /= np.linalg.norm(iso, axis=1, keepdims=True)
    report = {
        "templates": int(x.shape[0]),
        "identities": int(counts.size),
        "failed": len(paths) - len(keep),
        "out": str(args.out),
        "real": score_stats(x, labels, rng),
        "synthetic": score_stats(syn, syn_labels, rng),
        "isotropic_impostor_std": round(float(np.std(np.einsum("ij,ij->i", iso[::2], iso[1::2]))), 4),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
