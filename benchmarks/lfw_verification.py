"""LFW verification benchmark: threshold chosen on pairsDevTrain, accuracy measured on pairsDevTest.

Usage: ``python benchmarks/lfw_verification.py [--json] [--lfw DIR]``. Templates are cached under
``FACELEADS_DATA_DIR`` (see faceleads.evaluation.templates), so a second run only re-scores. The target is
an accuracy of at least 99.3% on the 1,000 test pairs (LFW view 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from faceleads.config import get_settings
from faceleads.evaluation import metrics
from faceleads.evaluation.datasets import read_pairs
from faceleads.evaluation.templates import TemplateExtractor
from faceleads.evaluation.verify import score_pair_set

DEFAULT_LFW = Path(__file__).resolve().parents[1] / ".." / "shared" / "faces" / "lfw-dev"
TARGET = 0.993


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW.resolve(), help="the lfw-dev folder")
    args = parser.parse_args(argv)
    lfw: Path = args.lfw
    started = time.perf_counter()
    extractor = TemplateExtractor(get_settings())
    train = read_pairs(lfw / "pairsDevTrain.txt", lfw / "images")
    test = read_pairs(lfw / "pairsDevTest.txt", lfw / "images")
    templates = extractor.templates(train.images() + test.images(), "lfw")
    train_scores = score_pair_set(train, templates)
    test_scores = score_pair_set(test, templates)
    threshold, train_accuracy = metrics.best_threshold(train_scores.scores, train_scores.same)
    accuracy = metrics.accuracy_at(test_scores.scores, test_scores.same, threshold)
    result = {
        "accuracy": accuracy,
        "threshold": threshold,
        "pairs": int(test_scores.scores.size),
        "failures": int(test_scores.failed.sum()),
        "train_pairs": int(train_scores.scores.size),
        "train_accuracy": train_accuracy,
        "train_failures": int(train_scores.failed.sum()),
        "model_version": extractor.engine.model_version,
        "templates_computed": extractor.computed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print(f"LFW pairsDevTest accuracy: {accuracy:.4%} ({result['pairs']} pairs, {result['failures']} failed)")
        print(f"threshold {threshold:.4f} chosen on pairsDevTrain (train accuracy {train_accuracy:.4%})")
        print(f"model {result['model_version']}; {extractor.computed} templates computed; {result['seconds']} s")
        print(f"target {TARGET:.1%}: {'met' if accuracy >= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
