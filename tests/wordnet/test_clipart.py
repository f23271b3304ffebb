"""The clip-art test set: the shipped table, rendering, benchmark mapping and splits, `devise data clipart`."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main
from wordnet.base.errors import DatasetError
from wordnet.datasets.clipart import (
    Drawing,
    benchmark_concept,
    build_clipart_dataset,
    read_clipart_table,
    validate_drawings,
)
from wordnet.datasets.emoji_concepts import split_concepts

NO_ENV = {"DEVISE_CLIPART_DIR": None, "DEVISE_CLIPART_SIZE": None, "DEVISE_SPLIT_SEED": None}


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def drawing(path: Path, *, transparent=True, colour=(200, 30, 30), empty=False) -> None:
    """A 60x40 drawing: a coloured disc on a transparent (or white) page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:40, :60]
    disc = (yy - 20) ** 2 + (xx - 25) ** 2 < 15 ** 2
    rgba = np.zeros((40, 60, 4), np.uint8)
    if not transparent:
        rgba[...] = 255
    if not empty:
        rgba[disc] = (*colour, 255)
    Image.fromarray(rgba if transparent else rgba[..., :3]).save(path)


def fake_clipart(root: Path) -> tuple[Path, list[Drawing]]:
    src = root / "png"
    drawing(src / "animals" / "beagle_artist_01.png")
    drawing(src / "animals" / "gatto_artist_01.png", transparent=False, colour=(20, 20, 20))
    drawing(src / "food" / "apple_artist_01.png", colour=(30, 200, 30))
    (src / "copies").mkdir()
    (src / "copies" / "apple_again_01.png").write_bytes((src / "food" / "apple_artist_01.png").read_bytes())
    drawing(src / "tools" / "empty_01.png", empty=True)
    drawing(src / "animals" / "armadillo_01.png", colour=(120, 100, 90))
    table = [Drawing("animals/beagle_artist_01.png", "beagle.n.01"),
             Drawing("animals/gatto_artist_01.png", "cat.n.01", "Italian gatto = cat"),
             Drawing("food/apple_artist_01.png", "apple.n.01"),
             Drawing("copies/apple_again_01.png", "apple.n.01"),
             Drawing("tools/empty_01.png", "hammer.n.02"),
             Drawing("animals/armadillo_01.png", "armadillo.n.01"),
             Drawing("animals/not_installed_01.png", "dog.n.01")]
    return src, table


def test_shipped_table_resolves_to_noun_synsets(wn):
    table = read_clipart_table()
    assert len(table) >= 1500
    validate_drawings(wn, table)  # raises on any unknown synset, non-noun or repeated file
    by_file = {d.file: d for d in table}
    assert by_file["animals/birds/tacchino_architetto_fran_01.png"].synset == "turkey.n.01"
    assert by_file["animals/birds/hen_01.png"].synset == "hen.n.01"


def test_benchmark_concept_is_the_synset_or_its_nearest_ancestor(wn, concepts):
    assert benchmark_concept(wn, "dog.n.01", concepts).concept == "dog"
    assert benchmark_concept(wn, "beagle.n.01", concepts).concept == "dog"
    assert benchmark_concept(wn, "hen.n.01", concepts).concept == "chicken"
    assert benchmark_concept(wn, "armadillo.n.01", concepts) is None


def test_validate_names_every_problem(wn):
    bad = [Drawing("a.png", "no_such.n.01"), Drawing("b.png", "run.v.01"), Drawing("c.png", "dog.n.01"),
           Drawing("c.png", "cat.n.01")]
    with pytest.raises(DatasetError) as err:
        validate_drawings(wn, bad)
    assert str(err.value) == ("clip-art table: a.png: no synset no_such.n.01; b.png: run.v.01 is not a noun; "
                              "c.png: listed twice")


@pytest.mark.parametrize("content, message", [
    ("file,note\na.png,x\n", r"t\.csv: missing column\(s\) synset"),
    ("file,synset\na.png,\n", r"t\.csv:2: file and synset are required"),
])
def test_read_table_rejects_bad_files(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_clipart_table(tmp_path / "t.csv")


def test_build_renders_maps_and_splits(tmp_path, wn, concepts):
    src, table = fake_clipart(tmp_path)
    out = tmp_path / "clipart"
    result = build_clipart_dataset(out, wn, table, concepts, source=src, size=32, n_splits=2)
    assert result.duplicates == 1 and result.missing == ["animals/not_installed_01.png"]
    assert [f for f, _ in result.failures] == ["tools/empty_01.png"]
    manifest = {r["file"]: r for r in rows(out / "manifest.csv")}
    assert sorted(manifest) == ["animals/armadillo_01.png", "animals/beagle_artist_01.png",
                                "animals/gatto_artist_01.png", "food/apple_artist_01.png"]
    beagle = manifest["animals/beagle_artist_01.png"]
    dog = next(c for c in concepts if c.concept == "dog")
    assert beagle["synset"] == "beagle.n.01" and beagle["concept"] == "dog" and beagle["benchmark_wnid"] == dog.wnid
    assert beagle["path"] == "images/n02088364/beagle_artist_01.png"
    assert manifest["animals/armadillo_01.png"]["benchmark_wnid"] == ""
    for r in manifest.values():
        image = np.asarray(Image.open(out / r["path"]))
        assert image.shape == (32, 32, 3)
        assert (image[0, 0] == 255).all()  # composited on white, cropped to the drawing
        assert (image[16, 16] != 255).any()
    assert len(rows(out / "all.csv")) == 4
    bench = rows(out / "benchmark.csv")
    assert {r["class"] for r in bench} == {dog.wnid, next(c.wnid for c in concepts if c.concept == "cat"),
                                           manifest["food/apple_artist_01.png"]["benchmark_wnid"]}
    seen, unseen = split_concepts(concepts, 0.2, 0)
    assert (out / "splits" / "unseen.txt").read_text().split() == [c.wnid for c in unseen]
    seen_ids = {c.wnid for c in seen}
    assert [r["class"] for r in rows(out / "test_seen.csv")] == [r["class"] for r in bench if r["class"] in seen_ids]
    assert len(rows(out / "test_seen.csv")) + len(rows(out / "test_unseen.csv")) == len(bench)
    split1 = out / "splits" / "split-1"
    assert (split1 / "seed.txt").read_text() == "1\n"
    assert all(r["img_name"].startswith("../../images/") for r in rows(split1 / "test_seen.csv"))
    assert "public domain" in (out / "ATTRIBUTION.md").read_text()


def test_cli_builds_the_test_set(tmp_path):
    src, table = fake_clipart(tmp_path)
    csv_path = tmp_path / "table.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "synset", "note"])
        writer.writerows([(d.file, d.synset, d.note) for d in table])
    result = CliRunner().invoke(main, ["data", "clipart", str(tmp_path / "out"), "--size", "24", "--drawings",
                                       str(csv_path), "--source", str(src)], env=NO_ENV)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-5].startswith("rendered 4 drawings of 4 synsets in ")
    assert lines[-5].endswith(" s (1 duplicate files skipped)")
    assert lines[-4].startswith("benchmark concepts: 3 drawings of 3 concepts; split (seed 0): ")
    seen, unseen = (int(n) for n in lines[-4].split(": ")[-1].replace(" seen,", "").split()[:2])
    assert seen + unseen == 3  # every benchmark drawing is of a seen or an unseen concept
    assert lines[-3] == "1 table files not installed, first: animals/not_installed_01.png"
    assert lines[-2] == "  failed tools/empty_01.png: ValueError: the drawing is empty"
    assert lines[-1] == f"wrote {tmp_path / 'out'}"


def test_cli_says_how_to_install_clipart(tmp_path, monkeypatch):
    import wordnet.datasets.clipart as clipart

    monkeypatch.setattr(clipart, "CLIPART_DIRS", ())
    result = CliRunner().invoke(main, ["data", "clipart", str(tmp_path / "out"), "--source", str(tmp_path / "no")],
                                env=NO_ENV)
    assert result.exit_code == 1
    assert result.output == (f"Error: Open Clip Art is not installed ({tmp_path / 'no'} not found); "
                             "apt-get install openclipart-png\n")
