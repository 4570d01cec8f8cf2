"""``faceleads evaluate``: accuracy and fairness of the face engine on labelled data (see docs/accuracy.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from faceleads.cli.common import AgencyOpt, cli_errors, emit
from faceleads.config import Settings, get_settings
from faceleads.errors import ValidationError
from faceleads.evaluation import calibrate as calibration
from faceleads.evaluation import identify as identification
from faceleads.evaluation import metrics, report
from faceleads.evaluation import verify as verification
from faceleads.evaluation.datasets import group_lookup, read_labels, read_pairs
from faceleads.evaluation.templates import TemplateExtractor

evaluate_app = typer.Typer(
    name="evaluate",
    help="Measure accuracy and fairness: verification (1:1), identification (1:N), threshold calibration.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write an HTML report with plots into this folder.")]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="Image root: LFW pairs resolve as DIR/Name/Name_000n.jpg, CSV and label paths relative to DIR "
        "(default: the folder of the pairs or labels file).",
    ),
]
GroupOpt = Annotated[
    str | None,
    typer.Option("--group-column", help="Labels column for demographic differentials (e.g. gender)."),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Global threshold for per-group rates (default: FACELEADS_SIMILARITY_THRESHOLD).",
        min=-1.0,
        max=1.0,
    ),
]
MinTrialsOpt = Annotated[
    int,
    typer.Option(
        "--min-group-trials",
        help="Groups with fewer trials (pairs or searches) are reported but left out of the max/min ratios.",
        min=1,
    ),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Recompute every template (ignore the cache).")]
SaveResultOpt = Annotated[
    bool,
    typer.Option(
        "--save",
        help="Store the headline figures and demographic differentials as the agency's latest measurement "
        "(published in the transparency report; supervisors and administrators).",
    ),
]
BootstrapOpt = Annotated[
    int,
    typer.Option(
        "--bootstrap",
        help="Bootstrap replicates (resampling identities) for the per-group intervals; 0 = none.",
        min=0,
        max=100_000,
    ),
]
ConfidenceOpt = Annotated[
    float, typer.Option("--confidence", help="Confidence level of the per-group intervals.", min=0.5, max=0.999)
]

err = Console(stderr=True)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _emit_figures(result: dict[str, Any], as_json: bool, title: str) -> None:
    """Print the figures: one JSON object on one line (what scripts and the benchmarks parse), or readable tables."""
    data = _clean(result)
    emit(data, as_json, lambda: _print_figures(data, title), compact=True)


def _print_figures(data: dict[str, Any], title: str) -> None:
    out = Console()
    table = Table(title=title, show_header=False)
    for key, value in data.items():
        if key == "groups":
            continue
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    out.print(table)
    groups = data.get("groups")
    if groups:
        gt = Table(title=f"groups at threshold {groups['threshold']:.4f}")
        keys = list(next(iter(groups["per_group"].values()), {}).keys())
        gt.add_column("group")
        for k in keys:
            gt.add_column(k)
        for name, row in groups["per_group"].items():
            gt.add_row(name, *("n/a" if row[k] is None else f"{row[k]:.4g}" for k in keys))
        out.print(gt)
        out.print({k: v for k, v in groups.items() if k not in {"per_group"}})


def _extractor(settings: Settings, no_cache: bool) -> TemplateExtractor:
    return TemplateExtractor(settings, use_cache=not no_cache)


@evaluate_app.command("verify")
def verify_cmd(
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="LFW pairs file (with or without header) or CSV path_a,path_b,same."),
    ] = None,
    images: ImagesOpt = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Labels CSV (path,identity,...): maps images to groups; without --pairs, every pair of "
            "labelled images is evaluated (all-pairs mode).",
        ),
    ] = None,
    group_column: GroupOpt = None,
    threshold: ThresholdOpt = None,
    min_group_trials: MinTrialsOpt = 30,
    bootstrap: BootstrapOpt = 1000,
    confidence: ConfidenceOpt = 0.95,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    no_cache: NoCacheOpt = False,
    save: SaveResultOpt = False,
    agency: AgencyOpt = None,
) -> None:
    """Verification (1:1): accuracy, ROC/DET, EER, TAR at FAR 1e-2/1e-3/1e-4, failures to enrol; per-group FMR
    and FNMR with bootstrap intervals."""
    settings = get_settings()
    with cli_errors():
        result, ps = run_verify(
            settings, pairs, images, labels, group_column, threshold, no_cache, min_group_trials, bootstrap, confidence
        )
        if report_dir is not None:
            _verify_report(report_dir, result, ps)
        if save:
            result["evaluation_result_id"] = _save_result(settings, agency, "verify", result, pairs or labels,
                                                          group_column)  # fmt: skip
    _emit_figures(result, as_json, "verification")


def _save_result(
    settings: Settings, agency: str | None, kind: str, result: dict[str, Any], source: Path | None,
    group_column: str | None,
) -> int:  # fmt: skip
    """Store the run's summary for the agency (``--save``); returns its id."""
    from faceleads.cli.context import cli_actor, runtime
    from faceleads.evaluation.stored import save_result

    rt = runtime(settings)
    stored = save_result(rt.session_factory, cli_actor(rt, agency), kind=kind, model_version=result["model_version"],
                         result=_clean(result), dataset=source.name if source else "",
                         group_column=group_column)  # fmt: skip
    return stored.id


def run_verify(
    settings: Settings,
    pairs: Path | None,
    images: Path | None,
    labels: Path | None,
    group_column: str | None,
    threshold: float | None,
    no_cache: bool = False,
    min_group_trials: int = 30,
    bootstrap: int = 1000,
    confidence: float = 0.95,
) -> tuple[dict[str, Any], verification.PairScores]:
    """Score the pairs and compute the verification figures (the ``verify`` command's work)."""
    if pairs is None and labels is None:
        raise ValidationError("give --pairs FILE, or --labels FILE for all pairs of labelled images")
    if group_column is not None and labels is None:
        raise ValidationError("--group-column needs --labels FILE (the column is read from the labels file)")
    extractor = _extractor(settings, no_cache)
    if pairs is not None:
        root = images or pairs.parent
        pair_set = read_pairs(pairs, root)
        templates = extractor.templates(pair_set.images(), "verify")
        groups = group_lookup(labels, images or labels.parent, group_column) if labels and group_column else None
        identities = group_lookup(labels, images or labels.parent, "identity") if labels and group_column else None
        ps = verification.score_pair_set(pair_set, templates, groups, identities)
    else:
        assert labels is not None
        rows = read_labels(labels, images or labels.parent, group_column)
        templates = extractor.templates([r.path for r in rows], "verify")
        ps = verification.all_pairs_scores(rows, templates, group_column)
    group_t = settings.similarity_threshold if threshold is None else threshold
    result = verification.evaluate_verification(
        ps,
        group_threshold=group_t if group_column else None,
        min_group_trials=min_group_trials,
        replicates=bootstrap,
        confidence=confidence,
    )
    result["model_version"] = extractor.engine.model_version
    result["templates_computed"] = extractor.computed
    return result, ps


def _group_curves(ps: verification.PairScores, min_pairs: int = 30) -> dict[str, metrics.ErrorCurve]:
    """One error curve per group (both images in the group) with enough genuine and impostor pairs."""
    out: dict[str, metrics.ErrorCurve] = {}
    if ps.group_a is None or ps.group_b is None:
        return out
    for code, name in enumerate(ps.group_names):
        inside = (ps.group_a == code) & (ps.group_b == code)
        gen, imp = ps.scores[inside & ps.same], ps.scores[inside & ~ps.same]
        if gen.size >= min_pairs and imp.size >= min_pairs:
            out[f"{name}-{name} pairs"] = metrics.error_curve(gen, imp)
    return out


def _verify_report(directory: Path, result: dict[str, Any], ps: verification.PairScores) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    curves = {"all pairs": metrics.error_curve(ps.genuine, ps.impostor)}
    curves.update(_group_curves(ps))
    plots = [
        report.plot_roc(curves, directory / "roc.png"),
        report.plot_det(curves, directory / "det.png"),
        report.plot_histograms(
            ps.genuine,
            ps.impostor,
            {"best-accuracy threshold": result["threshold"], "EER threshold": result["eer_threshold"]},
            directory / "scores.png",
        ),
    ]
    if "groups" in result:
        plots.append(
            report.plot_differentials(
                result["groups"], ["fmr", "fnmr"], directory / "differentials.png", "Verification by group"
            )
        )
    report.write_report(
        directory,
        "faceleads verification report",
        _clean(result),
        plots,
        "Threshold convention: score >= t is a match. Accuracy: " + ps.protocol + ".",
    )


@evaluate_app.command("identify")
def identify_cmd(
    labels: Annotated[Path, typer.Option("--labels", help="Labels CSV: path,identity[,role][,probe_group],...")],
    images: ImagesOpt = None,
    group_column: GroupOpt = None,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout",
            help="Share of multi-photo identities held out of the gallery as non-mated probes.",
            min=0.0,
            max=0.99,
        ),
    ] = 0.0,
    threshold: ThresholdOpt = None,
    min_group_trials: MinTrialsOpt = 30,
    bootstrap: BootstrapOpt = 1000,
    confidence: ConfidenceOpt = 0.95,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    no_cache: NoCacheOpt = False,
    save: SaveResultOpt = False,
    agency: AgencyOpt = None,
) -> None:
    """Identification (1:N): CMC rank 1/5/10/20/50, FNIR at FPIR 1e-1/1e-2/1e-3, FNIR at rank 50; per-group FNIR
    and FPIR with bootstrap intervals."""
    settings = get_settings()
    with cli_errors():
        result, res = run_identify(
            settings,
            labels,
            images,
            group_column,
            holdout,
            threshold,
            no_cache,
            min_group_trials,
            bootstrap,
            confidence,
        )
        if report_dir is not None:
            _identify_report(report_dir, result, res)
        if save:
            result["evaluation_result_id"] = _save_result(settings, agency, "identify", result, labels, group_column)
    _emit_figures(result, as_json, "identification")


def run_identify(
    settings: Settings,
    labels: Path,
    images: Path | None,
    group_column: str | None,
    holdout: float = 0.0,
    threshold: float | None = None,
    no_cache: bool = False,
    min_group_trials: int = 30,
    bootstrap: int = 1000,
    confidence: float = 0.95,
) -> tuple[dict[str, Any], identification.SearchResults]:
    """Split, search and compute the identification figures (the ``identify`` command's work)."""
    rows = read_labels(labels, images or labels.parent, group_column)
    split = identification.split_labels(rows, holdout)
    extractor = _extractor(settings, no_cache)
    templates = extractor.templates([r.path for r in rows], "identify")
    res = identification.run_searches(split, templates, group_column, settings.score_fusion)
    group_t = settings.similarity_threshold if threshold is None else threshold
    result = identification.evaluate_identification(
        res,
        settings.candidate_list_length,
        group_threshold=group_t if group_column else None,
        min_group_trials=min_group_trials,
        replicates=bootstrap,
        confidence=confidence,
    )
    result["score_fusion"] = settings.score_fusion.value
    result["model_version"] = extractor.engine.model_version
    result["templates_computed"] = extractor.computed
    return result, res


def _identify_report(directory: Path, result: dict[str, Any], res: identification.SearchResults) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    plots = [report.plot_cmc(res.mate_ranks, identification.MAX_RANK, directory / "cmc.png")]
    mate = res.mate_scores[np.isfinite(res.mate_scores)]
    top = res.nonmated_top[np.isfinite(res.nonmated_top)]
    if mate.size and top.size:
        shown = {f"FPIR {k}": v for k, v in result["threshold_at_fpir"].items() if v is not None}
        plots.append(report.plot_histograms(mate, top, shown, directory / "scores.png"))
    if "groups" in result:
        plots.append(
            report.plot_differentials(
                result["groups"], ["fpir", "fnir"], directory / "differentials.png", "Identification by group"
            )
        )
    report.write_report(
        directory,
        "faceleads identification report",
        _clean(result),
        plots,
        "Scores: genuine = mate score of mated searches; impostor = top candidate of non-mated searches.",
    )


@evaluate_app.command("calibrate")
def calibrate_cmd(
    target_fmr: Annotated[
        float, typer.Option("--target-fmr", help="False match rate to reach, e.g. 1e-4.", min=1e-9, max=0.5)
    ] = 1e-4,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="Pairs file: its different-person pairs are the impostors.")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Labels CSV: every pair of images of different identities is an impostor."),
    ] = None,
    images: ImagesOpt = None,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Confidence level of the interval.", min=0.5, max=0.999)
    ] = 0.95,
    write_settings: Annotated[
        Path | None,
        typer.Option("--write-settings", help="Env file to write FACELEADS_SIMILARITY_THRESHOLD=... into."),
    ] = None,
    save: Annotated[
        bool,
        typer.Option(
            "--save",
            help="Store the impostor score distribution as the agency's latest calibration (read by the live "
            "deployment screens to show the expected false alert rate; supervisors and administrators).",
        ),
    ] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Threshold for a target false match rate, with a confidence interval and its impostor count."""
    settings = get_settings()
    with cli_errors():
        if (pairs is None) == (labels is None):
            raise ValidationError("give exactly one of --pairs FILE or --labels FILE")
        extractor = _extractor(settings, no_cache)
        if pairs is not None:
            pair_set = read_pairs(pairs, images or pairs.parent)
            templates = extractor.templates(pair_set.images(), "calibrate")
            ps = verification.score_pair_set(pair_set, templates)
        else:
            assert labels is not None
            rows = read_labels(labels, images or labels.parent)
            templates = extractor.templates([r.path for r in rows], "calibrate")
            ps = verification.all_pairs_scores(rows, templates)
        cal = calibration.calibrate(ps, target_fmr, confidence)
        result = cal.as_json()
        result["model_version"] = extractor.engine.model_version
        if save:
            from faceleads.cli.context import cli_actor, runtime
            from faceleads.evaluation.stored import save_calibration

            rt = runtime(settings)
            stored = save_calibration(
                rt.session_factory, cli_actor(rt, agency), source="calibrate", model_version=result["model_version"],
                impostor_scores=calibration.impostor_scores(ps), dataset=str(pairs or labels),
                target_fmr=target_fmr, threshold=cal.threshold,
            )  # fmt: skip
            result["calibration_id"] = stored.id
        if write_settings is not None:
            calibration.write_threshold(write_settings, cal.threshold)
            result["written_to"] = str(write_settings)
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            lines = {"threshold": cal.threshold}
            if cal.ci_low is not None:
                lines["CI low"] = cal.ci_low
            if cal.ci_high is not None:
                lines["CI high"] = cal.ci_high
            plot = report.plot_histograms(
                ps.scores[ps.same & ~ps.failed], calibration.impostor_scores(ps), lines, report_dir / "scores.png"
            )
            report.write_report(
                report_dir, "faceleads threshold calibration", _clean(result), [plot], str(result["method"])
            )
    for warning in cal.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    _emit_figures(result, as_json, "calibration")


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` sub-commands to the main app."""
    app.add_typer(evaluate_app, name="evaluate")
