"""`devise results`: many eval reports or result files -> one table (the five-split summary of the emoji benchmark)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from wordnet.base.errors import DeviseError
from wordnet.scoring import results


def method(hit5, candidates, **extra):
    return {"candidates": candidates, "hit@1": hit5 / 2, "hit@5": hit5, "hit@5_ci": [hit5 / 2, hit5 * 1.5],
            "mean_per_class_hit@1": hit5 / 4, **extra}


def report(devise: float, conse: float) -> dict:
    """An `eval --json` report of unseen-class images: zero-shot (given) and generalised settings."""
    return {"setting": "given", "n_images": 780, "n_classes": 114, "candidate_kind": "zsl", "data": "unseen.csv",
            "model": "runs/m", "versions": {"devise": "0.1.0"},
            "methods": {"devise": method(devise, 114), "conse": method(conse, 114), "chance": method(0.044, 114)},
            "settings": {"gzsl": {"setting": "gzsl", "n_images": 780, "n_classes": 114,
                                  "methods": {"devise": method(devise / 4, 569, U=devise / 8)}}}}


def write(folder, k, devise, conse):
    path = folder / f"unseen-{k}.json"
    path.write_text(json.dumps(report(devise, conse)))
    return path


def run(*args):
    return CliRunner().invoke(main, ["results", *map(str, args)])


def test_records_are_flat_with_clip_benchmark_aliases():
    recs = results.records(report(0.2, 0.1))
    assert [(r["setting"], r["candidate_labels"], r["method"]) for r in recs] == [
        ("given", "unseen", "devise"), ("given", "unseen", "conse"), ("given", "unseen", "chance"),
        ("gzsl", "seen+unseen", "devise")]
    d = recs[0]
    assert d["metrics"] == {"acc1": 0.1, "acc5": 0.2, "mean_per_class_recall": 0.05, "hit@1": 0.1, "hit@5": 0.2,
                            "hit@5_ci_low": 0.1, "hit@5_ci_high": pytest.approx(0.3), "mean_per_class_hit@1": 0.05}
    assert (d["dataset"], d["model"], d["task"], d["images"], d["classes"], d["candidates"]) == (
        "unseen.csv", "runs/m", "zeroshot_classification", 780, 114, 114)
    assert recs[3]["metrics"]["U"] == 0.025 and d["versions"] == {"devise": "0.1.0"}


def test_mean_over_files_by_hand(tmp_path):
    files = [write(tmp_path, 0, 0.20, 0.15), write(tmp_path, 1, 0.24, 0.20)]
    res = run(*files, "--mean", "--metrics", "hit@5,mean_per_class_recall,U")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "| task | setting | candidate_labels | method | runs | hit@5 | mean_per_class_recall | U |",
        "|---|---|---|---|---|---:|---:|---:|",
        "| zeroshot_classification | given | unseen | devise | 2 | 22.0 [20.0–24.0] | 5.5 [5.0–6.0] | – |",
        "| zeroshot_classification | given | unseen | conse | 2 | 17.5 [15.0–20.0] | 4.4 [3.8–5.0] | – |",
        "| zeroshot_classification | given | unseen | chance | 2 | 4.4 [4.4–4.4] | 1.1 [1.1–1.1] | – |",
        "| zeroshot_classification | gzsl | seen+unseen | devise | 2 | 5.5 [5.0–6.0] | 1.4 [1.2–1.5] | 2.8 [2.5–3.0] |",
        "",
        "2 file(s); figures in %, mean [min–max] over the files."]


def test_csv_rows_filters_and_files(tmp_path):
    files = [write(tmp_path, 0, 0.20, 0.15), write(tmp_path, 1, 0.24, 0.20)]
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps(results.records(report(0.3, 0.1))[:1]))  # a result file as `eval --result` writes
    out = tmp_path / "t.csv"
    res = run(*files, flat, "--method", "devise", "--setting", "given", "--metrics", "hit@1,hit@5", "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stdout == f"wrote {out}: 3 rows x 2 metrics from 3 file(s)\n"
    assert out.read_text().splitlines() == [
        "dataset,model,task,setting,candidate_labels,method,candidates,images,classes,hit@1,hit@5",
        "unseen.csv,runs/m,zeroshot_classification,given,unseen,devise,114,780,114,0.1,0.2",
        "unseen.csv,runs/m,zeroshot_classification,given,unseen,devise,114,780,114,0.12,0.24",
        "unseen.csv,runs/m,zeroshot_classification,given,unseen,devise,114,780,114,0.15,0.3"]
    res = run(*files, "--mean", "--method", "devise", "--metrics", "hit@5", "--format", "csv")
    assert res.stdout.splitlines()[:2] == ["task,setting,candidate_labels,method,runs,hit@5,hit@5_min,hit@5_max",
                                           "zeroshot_classification,given,unseen,devise,2,0.22,0.2,0.24"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    f = write(tmp_path, 0, 0.2, 0.1)
    res = run(f, "--metrics", "hit@7")
    assert res.exit_code == 1
    assert res.output.startswith("Error: no result has the metric hit@7; they have: acc1, acc5,")
    res = run(tmp_path / "none.json")
    assert (res.exit_code, res.output) == (1, f"Error: result file {tmp_path / 'none.json'} does not exist\n")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"dataset": "x"}]')
    res = run(bad)
    assert res.output.startswith(f"Error: {bad}: record 1 is not a result record")
    res = run(f, "--method", "knn")
    assert res.output == "Error: no result in 1 file(s) matches --setting/--method\n"
    with pytest.raises(DeviseError, match="no result records"):
        results.merge([])
