"""Rendering ``devise eval`` results: rich tables, the JSON file and the hit@k / hp@k plot.

Figures are shown in percent with the class-bootstrap 95% interval beside them;
the JSON keeps fractions (``"hit@1": 0.42, "hit@1_ci": [0.35, 0.49]``).
matplotlib is optional (``pip install devise[plot]``) and imported only for ``--plot``.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from devise.files import atomic_path, atomic_write

METHOD_ORDER = ("devise", "devise+cal", "conse", "conse+cal", "combined", "combined+cal", "softmax", "chance")
# (column prefix, table caption): per image, hierarchical, per class (each class weighs the same)
TABLES = (("hit@", "flat hit@k (share of images)"), ("hp@", "hierarchical precision@k"),
          ("mean_per_class_hit@", "mean per-class hit@k (each class weighs the same; hit@1 = mean per-class recall)"))
GZSL_CAPTION = ("S / U: mean per-class top-1 on seen- / unseen-class images against all candidates; "
                "H: their harmonic mean; AUSUC: area under the seen-unseen curve of calibrated stacking")
MAX_LISTED_FAILURES = 20


def _settings(report: dict) -> list[dict]:
    return [report] + list(report.get("settings", {}).values())


def _cell(entry: dict, col: str) -> str:
    text = f"{100 * entry[col]:.1f}"
    ci = entry.get(f"{col}_ci")
    return text + (f" ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})" if ci else "")


KIND_TEXT = {"seen": "trained labels only", "zsl": "unseen labels only", "gzsl": "seen + unseen labels",
             "other": "labels"}


def _title(s: dict) -> str:
    cands = s["candidates"]
    cands = "/".join(map(str, cands)) if isinstance(cands, list) else str(cands)
    what = {"given": f"as given ({KIND_TEXT.get(s.get('candidate_kind'), 'labels')})",
            "zsl": "zero-shot: unseen classes vs unseen labels",
            "gzsl": 'generalised zero-shot: vs unseen + training labels ("+1K")'}.get(s["setting"], s["setting"])
    splits = f", mean of {s['n_splits']} splits" if s.get("n_splits") else ""
    return f"{what} — {s['n_images']} images, {s['n_classes']} classes, {cands} candidates{splits}"


def _title_cands(s: dict) -> str:
    cands = s["candidates"]
    return str(min(cands)) if isinstance(cands, list) else str(cands)


def print_report(report: dict, con) -> None:
    """Per setting: a title line, then one table per metric (rows: methods; columns: k), in %."""
    from rich.table import Table

    for s in _settings(report):
        con.print(f"[bold]{_title(s)}[/bold]", highlight=False)
        methods = sorted(s["methods"], key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99)
        cols = [c for c in next(iter(s["methods"].values())) if "@" in c and not c.endswith("_ci")]
        for kind, caption in TABLES:
            kcols = [c for c in cols if c.startswith(kind)]
            if not kcols:
                continue
            con.print(caption, style="italic", highlight=False, soft_wrap=True)
            table = Table(show_edge=False, pad_edge=False)
            table.add_column("method", no_wrap=True)
            for c in kcols:
                table.add_column(c[len(kind) - len("hit@"):] if kind.startswith("mean") else c, justify="right",
                                 no_wrap=True)
            for m in methods:
                table.add_row(m, *(_cell(s["methods"][m], c) for c in kcols))
            con.print(table)
        if s.get("k_not_scored"):
            con.print(f"  k = {', '.join(map(str, s['k_not_scored']))} not shown: k >= the {_title_cands(s)} "
                      f"candidates is 100 % for any method", highlight=False)
        _print_gzsl(s, methods, con)
        cal = s.get("calibration")
        if isinstance(cal, dict):
            for m, info in cal.items():
                con.print(f"  {m}+cal: gamma = {info['gamma']:.4f} ({info['criterion']})", highlight=False)
        if s.get("not_candidates"):
            con.print(f"  {s['not_candidates']} images have a true label outside the candidates "
                      f"(they count as misses)", highlight=False)
            if s is report and report.get("classes_not_candidates"):
                shown = report["classes_not_candidates"]
                con.print(f"  those classes: {', '.join(shown[:10])}{' …' if len(shown) > 10 else ''}",
                          highlight=False)
        con.print()
    if any("_ci" in c for c in next(iter(report["methods"].values()))):
        con.print("Figures in %; (lo–hi): bootstrap 95% interval resampling classes.", highlight=False, markup=False)
    for note in report.get("notes", []):
        con.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    if report.get("n_failed"):
        con.print(f"{report['n_failed']} images could not be read and are not counted:", highlight=False)
        for f in report["failed"][:MAX_LISTED_FAILURES]:
            con.print(f"  {f['path']}: {f['error']}", highlight=False, markup=False, soft_wrap=True)
        if report["n_failed"] > MAX_LISTED_FAILURES:
            con.print(f"  ... and {report['n_failed'] - MAX_LISTED_FAILURES} more (all in --json)", highlight=False)


def _print_gzsl(s: dict, methods: list[str], con) -> None:
    """S, U, H (and AUSUC) of the methods scored against seen + unseen labels."""
    from rich.table import Table

    rows = [m for m in methods if "S" in s["methods"][m] or "U" in s["methods"][m]]
    if not rows:
        return
    keys = [k for k in ("S", "U", "H", "AUSUC") if any(k in s["methods"][m] for m in rows)]
    con.print(GZSL_CAPTION, style="italic", highlight=False, soft_wrap=True)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("method", no_wrap=True)
    for k in keys:
        table.add_column(k, justify="right", no_wrap=True)
    for m in rows:
        entry = s["methods"][m]
        table.add_row(m, *(f"{100 * entry[k]:.1f}" if k in entry else "–" for k in keys))
    con.print(table)


def write_json(report, path: Path) -> None:
    with atomic_write(path, encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def write_per_class(rows: list[dict], path: Path) -> None:
    """The per-class table as JSON (``.json``) or CSV (anything else; wrong labels joined by ``; ``)."""
    if path.suffix.lower() == ".json":
        write_json(rows, path)
        return
    import csv

    fields = list(rows[0]) if rows else ["class", "wnid", "label", "images"]
    with atomic_write(path, encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()})


def check_matplotlib() -> None:
    """Fail before the (slow) evaluation when --plot cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.ClickException("--plot needs matplotlib: pip install 'devise[plot]' (or matplotlib)") from None


def plot(report: dict, path: Path) -> None:
    """hit@k and hp@k against k, one line per method, one row of panels per setting; then, when
    generalised zero-shot was scored, the seen-unseen curves of calibrated stacking (AUSUC in the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    settings = _settings(report)
    curves = [(s["setting"], c) for s in settings for c in _curves(s)]
    ks = report["k"]
    kinds = ["hit"] + (["hp"] if any(c.startswith("hp@") for c in report["methods"]["devise"]) else [])
    ncols = max(len(kinds), min(len(curves), 3))
    nrows = len(settings) + (1 if curves else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for r, s in enumerate(settings):
        for c in range(ncols):
            if c >= len(kinds):
                axes[r][c].set_axis_off()
                continue
            _plot_k(axes[r][c], s, kinds[c], [k for k in ks if k in s["k"]])  # a setting may drop trivial k
    if curves:
        for c in range(ncols):
            ax = axes[-1][c]
            if c >= len(curves):
                ax.set_axis_off()
                continue
            name, curve = curves[c]
            for m, points in curve.items():
                colour = f"C{METHOD_ORDER.index(m) if m in METHOD_ORDER else 9}"
                ax.plot([100 * u for u in points["unseen"]], [100 * v for v in points["seen"]], color=colour,
                        label=f"{m} (AUSUC {100 * points['ausuc']:.1f})")
            ax.set_xlabel("unseen-class accuracy U (%)")
            ax.set_ylabel("seen-class accuracy S (%)")
            ax.set_title(f"{name}: calibrated stacking over gamma", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _curves(s: dict) -> list[dict]:
    """A setting's seen-unseen curves: its own, or each split's."""
    if s.get("stacking_curve"):
        return [s["stacking_curve"]]
    return [sp["stacking_curve"] for sp in s.get("splits", []) if sp.get("stacking_curve")]


def _plot_k(ax, s: dict, kind: str, ks: list[int]) -> None:
    for m, entry in s["methods"].items():
        colour = f"C{METHOD_ORDER.index(m) if m in METHOD_ORDER else 9}"
        y = [100 * entry[f"{kind}@{k}"] for k in ks]
        ax.plot(ks, y, marker="o", label=m, color=colour, linestyle=":" if m == "chance" else "-")
        if f"{kind}@{ks[0]}_ci" in entry and m == "devise":  # one band keeps the plot readable
            lo = [100 * entry[f"{kind}@{k}_ci"][0] for k in ks]
            hi = [100 * entry[f"{kind}@{k}_ci"][1] for k in ks]
            ax.fill_between(ks, lo, hi, color=colour, alpha=0.12, label="devise 95% CI")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel(f"{'flat hit' if kind == 'hit' else 'hierarchical precision'}@k (%)")
    ax.set_title(s["setting"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
