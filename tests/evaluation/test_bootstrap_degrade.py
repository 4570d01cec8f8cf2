"""Bootstrap intervals that resample identities, per-group warnings, and the CCTV degradation (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from faceleads.evaluation import bootstrap, metrics
from faceleads.evaluation.degrade import Degradation, defocus_kernel, degrade, motion_kernel, sample


def test_aggregate_and_dense_and_gather_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    ca = rng.integers(0, 40, 3000)
    cb = rng.integers(0, 40, 3000)
    err = rng.random(3000) < 0.1
    cells = bootstrap.aggregate(ca, cb, err)
    assert cells.trials.sum() == 3000 and cells.errors.sum() == err.sum()
    weights = bootstrap.cluster_weights(40, 50, np.random.default_rng(1))
    assert weights.shape == (50, 40) and (weights.sum(axis=1) == 40).all()
    dense = bootstrap.replicate_rates(weights, cells)
    monkeypatch.setattr(bootstrap, "DENSE_LIMIT", 1)
    gathered = bootstrap.replicate_rates(weights, cells)
    np.testing.assert_allclose(dense, gathered)
    # Unit weights reproduce the plain rate; the weighting is w[a] * w[b] off the diagonal, w[a] on it.
    ones = np.ones((1, 40))
    assert bootstrap.replicate_rates(ones, cells)[0] == pytest.approx(err.mean())
    two = np.ones((1, 40))
    two[0, 0] = 2.0
    inside = bootstrap.aggregate([0, 0, 1], [0, 1, 1], [True, False, False])
    # pair (0,0): weight 2, (0,1): weight 2, (1,1): weight 1 -> 2 errors out of 5 weighted trials.
    assert bootstrap.replicate_rates(two, inside)[0] == pytest.approx(2 / 5)


def test_percentile_intervals_and_unbounded_ratios() -> None:
    assert bootstrap.percentile_interval([np.nan, np.nan], 0.95) is None
    lo, hi = bootstrap.percentile_interval(np.arange(101, dtype=float), 0.9)  # type: ignore[misc]
    assert lo == pytest.approx(5.0) and hi == pytest.approx(95.0)
    ratios = bootstrap.replicate_ratios([np.array([0.1, 0.2, 0.0]), np.array([0.2, 0.2, 0.1])])
    assert ratios[0] == pytest.approx(2.0) and ratios[1] == pytest.approx(1.0) and np.isinf(ratios[2])
    assert bootstrap.percentile_interval(ratios, 0.95)[1] is None  # type: ignore[index]


def _pairs(rng: np.random.Generator, n_ids: int, fnmr: float, group: int) -> tuple[np.ndarray, ...]:
    # Five genuine pairs per identity and impostor pairs with the next identity.
    ids = np.repeat(np.arange(n_ids), 5)
    genuine_scores = np.where(rng.random(ids.size) < fnmr, 0.1, 0.6)
    imp_a = np.arange(n_ids)
    imp_scores = np.where(rng.random(n_ids) < 0.02, 0.5, 0.0)
    scores = np.concatenate([genuine_scores, imp_scores])
    same = np.concatenate([np.ones(ids.size, bool), np.zeros(n_ids, bool)])
    ca = np.concatenate([ids, imp_a])
    cb = np.concatenate([ids, (imp_a + 1) % n_ids])
    groups = np.full(scores.size, group)
    return scores, same, ca, cb, groups


def test_verification_differentials_with_intervals_and_warnings() -> None:
    rng = np.random.default_rng(7)
    f = _pairs(rng, 300, 0.08, 0)
    m = _pairs(rng, 300, 0.02, 1)
    few = _pairs(rng, 4, 0.0, 2)
    s, same, ca, cb, g = (np.concatenate([x[i] for x in (f, m)] + [few[i]]) for i in range(5))
    cb = cb.copy()
    ca = ca.copy()
    offset = np.concatenate([np.zeros(f[0].size), np.full(m[0].size, 1000), np.full(few[0].size, 2000)]).astype(int)
    ca += offset
    cb += offset
    out = metrics.verification_differentials(
        s, same, g, g, ["F", "M", "X"], 0.3, 30, cluster_a=ca, cluster_b=cb, replicates=300
    )
    fem, mal = out["per_group"]["F"], out["per_group"]["M"]
    lo, hi = fem["fnmr_ci"]
    assert lo < fem["fnmr"] < hi and lo > 0.0 and hi < 0.2
    assert mal["fnmr_ci"][0] <= mal["fnmr"] <= mal["fnmr_ci"][1]
    ratio_lo, ratio_hi = out["fnmr_ratio_ci"]
    assert ratio_lo < out["fnmr_ratio"] and (ratio_hi is None or ratio_hi > out["fnmr_ratio"])
    assert out["bootstrap"]["unit"] == "identity" and out["bootstrap"]["replicates"] == 300
    assert any("group X" in w and "too few to judge" in w for w in out["warnings"])
    # Identity resampling is wider than pretending the pairs were independent (genuine pairs share identities).
    naive_se = np.sqrt(fem["fnmr"] * (1 - fem["fnmr"]) / fem["genuine_pairs"])
    assert (hi - lo) / 2 > 1.5 * naive_se * 0.9
    plain = metrics.verification_differentials(s, same, g, g, ["F", "M", "X"], 0.3, 30)
    assert "fnmr_ci" not in plain["per_group"]["F"] and plain["warnings"]


def test_identification_differentials_with_intervals() -> None:
    rng = np.random.default_rng(2)
    n = 400
    mate_scores = np.where(rng.random(n) < 0.1, 0.1, 0.7)
    ranks = np.where(mate_scores > 0.5, 1.0, 30.0)
    groups = np.arange(n) % 2
    clusters = np.arange(n) // 2 * 2 + groups  # two searches per identity
    top = np.where(rng.random(n) < 0.05, 0.4, 0.1)
    out = metrics.identification_differentials(
        mate_scores, ranks, groups, top, groups, ["A", "B"], 0.3, 20, 30,
        mated_clusters=clusters, nonmated_clusters=clusters, replicates=200,
    )
    for g in ("A", "B"):
        lo, hi = out["per_group"][g]["fnir_ci"]
        assert lo <= out["per_group"][g]["fnir"] <= hi
    assert "fnir_ratio_ci" in out and "fpir_ratio_ci" in out


def test_degradation_is_reproducible_and_in_range() -> None:
    rng = np.random.default_rng(0)
    image = (np.indices((250, 250)).sum(0) % 255).astype(np.uint8)[..., None].repeat(3, axis=2)
    box = np.array([80, 70, 170, 190], np.float32)
    marks = np.array([[100, 110], [150, 110], [125, 140], [105, 165], [145, 165]], np.float32)
    d = sample(np.random.default_rng([15, 3]))
    a = degrade(image, box, marks, d, np.random.default_rng([15, 3, 1]))
    b = degrade(image, box, marks, d, np.random.default_rng([15, 3, 1]))
    np.testing.assert_array_equal(a, b)
    scale = d.inter_eye_px / 50.0
    assert a.shape[1] == pytest.approx(90 * d.crop_factor * scale, abs=3)
    for _ in range(200):
        s = sample(rng)
        assert 12 <= s.inter_eye_px <= 30 and 1.0 <= s.crop_factor <= 1.3 and 15 <= s.jpeg_quality <= 40
        assert s.blur in {"motion", "defocus"} and 0.25 <= s.gain <= 1.0
    for kernel in (motion_kernel(5.0, 30.0), defocus_kernel(1.5)):
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and kernel.shape[0] % 2 == 1
    dark = Degradation(20, 1.1, 0, 0, "defocus", 1.0, 0, 0.3, 1.0, 0.0, 90)
    assert degrade(image, box, marks, dark, rng).mean() < 0.45 * image[70:190, 80:170].mean()
