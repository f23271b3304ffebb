"""The pre-training pool: icon names shared by many sets, disjoint from the benchmark; `devise data pool`."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main
from wordnet.base.errors import DatasetError
from wordnet.datasets.emoji_concepts import load_concepts
from wordnet.datasets.icon_pool import (
    BenchmarkGuard,
    base_name,
    build_icon_pool,
    choose_icons,
    class_name,
    pool_collections,
    read_review,
)
from wordnet.datasets.icons import iconify_collections

SQUARE = '<path d="M2 2h12v12H2z"/>'
CIRCLE = '<circle cx="8" cy="8" r="6"/>'
TRIANGLE = '<path d="M8 1L15 15H1z"/>'


@pytest.fixture(scope="module")
def guard(wn):
    return BenchmarkGuard(wn, load_concepts(wn))


def fake_iconify(root: Path) -> Path:
    """A node_modules with @iconify/json: four open sets, a logo set, a GPL set and an emoji set."""
    base = root / "node_modules" / "@iconify" / "json"
    (base / "json").mkdir(parents=True)
    (base / "package.json").write_text('{"name": "@iconify/json", "version": "9.9.9"}')
    sets = {
        "alpha": ("MIT", "UI 24px", {"calendar": SQUARE, "calendar-outline": CIRCLE, "wallet": TRIANGLE,
                                     "cat-face": CIRCLE, "bulldog": SQUARE, "github": CIRCLE, "beer": SQUARE}),
        "beta": ("Apache-2.0", "UI 16px / 32px", {"calendar-2": CIRCLE, "wallet-filled": SQUARE, "cat": TRIANGLE,
                                                  "bulldog": CIRCLE, "github": SQUARE, "beer": CIRCLE}),
        "gamma": ("CC-BY-4.0", "Material", {"baseline-calendar": TRIANGLE, "wallet": CIRCLE, "bulldog": TRIANGLE,
                                            "cat-outline": SQUARE,
                                            "github": TRIANGLE, "beer-mug": CIRCLE, "circle-clock": CIRCLE}),
        "delta": ("MIT", "Thematic", {"calendar-plus": SQUARE, "cat": CIRCLE, "wallet-16px": TRIANGLE, "github": CIRCLE,
                                      "beer": TRIANGLE, "circle": SQUARE}),
        "brands": ("CC0-1.0", "Logos", {"github": CIRCLE, "wallet": SQUARE}),
        "gnu": ("GPL-3.0", "UI 24px", {"calendar": SQUARE, "wallet": CIRCLE}),
        "somemoji": ("MIT", "Emoji", {"calendar": SQUARE, "wallet": CIRCLE}),
    }
    collections = {}
    for prefix, (licence, category, icons) in sets.items():
        meta = {"name": prefix.title(), "author": {"name": f"{prefix} authors", "url": f"https://{prefix}.test"},
                "license": {"title": licence, "spdx": licence}, "category": category}
        collections[prefix] = meta
        data = {"prefix": prefix, "width": 16, "height": 16, "icons": {k: {"body": v} for k, v in icons.items()},
                "aliases": {"wallet-alias": {"parent": next(iter(icons))}}}
        (base / "json" / f"{prefix}.json").write_text(json.dumps(data))
    (base / "collections.json").write_text(json.dumps(collections))
    return root / "node_modules"


def fake_collections(node_modules: Path) -> dict:
    """The fake sets only (the checkout's own node_modules holds real emoji sets too)."""
    return {k: v for k, v in iconify_collections(node_modules).items() if Path(v[1]).is_relative_to(node_modules)}


FAKE_SETS = "alpha,beta,gamma,delta,brands,gnu,somemoji"


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_icon_names_normalise_to_classes():
    assert base_name("outline-home-2-16px") == "home"
    assert base_name("baseline-calendar-today") == "calendar-today"
    assert base_name("wallet-filled") == base_name("wallet-outline-rounded") == "wallet"
    assert class_name("folder-plus") == "folder" and class_name("lock-open-outline") == "lock"
    assert class_name("calendar") == "calendar" and class_name("x") == "x"


def test_guard_names_every_kind_of_leak(guard):
    assert guard.clash("cat-collar") == "name cat (cat.n.01)"
    assert guard.clash("ice-cream-cone").startswith("name ice-cream")
    assert guard.clash("keys") == "name keys (key.n.01)"  # a plural names the same thing
    assert guard.relation("bulldog") == "wordnet bulldog.n.01 is a kind of dog.n.01"
    assert guard.relation("truck").startswith("wordnet truck.n.01 includes")
    assert guard.why_excluded("calendar") == guard.why_excluded("wallet") == ""


def test_review_table_is_well_formed(tmp_path):
    review = read_review()
    assert review["beer"][0] == "exclude" and review["search"][0] == "exclude"
    assert review["atom"][0] == "keep"
    assert all(decision in ("exclude", "keep") and reason for decision, reason in review.values())
    bad = tmp_path / "review.csv"
    bad.write_text("class,decision,reason\nbeer,maybe,why\n")
    with pytest.raises(DatasetError, match=r"review\.csv:2: decision must be exclude or keep, got 'maybe'"):
        read_review(bad)


def test_pool_sets_leave_out_emoji_logo_and_gpl_sets(tmp_path):
    kept, left_out = pool_collections(fake_collections(fake_iconify(tmp_path)))
    assert sorted(kept) == ["alpha", "beta", "delta", "gamma"]
    assert sorted(left_out) == ["brands: category Logos", "gnu: licence GPL-3.0", "somemoji: emoji set"]


def test_icons_are_chosen_round_robin_over_sets():
    by_set = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1"], "c": ["c1", "c2"]}
    chosen = choose_icons(by_set, 4, seed=0, cls="x")
    assert len(chosen) == 4 and {s for s, _ in chosen} == {"a", "b", "c"}
    assert chosen == choose_icons(by_set, 4, seed=0, cls="x")
    assert len(choose_icons(by_set, 99, seed=0, cls="x")) == 7


def test_build_writes_a_disjoint_pool(tmp_path, wn):
    node_modules = fake_iconify(tmp_path)
    kept, _ = pool_collections(fake_collections(node_modules))
    review = {"beer": ("exclude", "drawn as a beer mug")}
    result = build_icon_pool(tmp_path / "pool", wn, load_concepts(wn), kept, size=24, min_sets=3,
                             max_per_class=3, brands={"github"}, review=review)
    out = tmp_path / "pool"
    assert sorted(result.classes) == ["calendar", "wallet"]
    excluded = {r["class"]: r["reason"] for r in rows(out / "excluded.csv")}
    assert excluded == {"github": "brand", "beer": "review: drawn as a beer mug", "cat": "name cat (cat.n.01)",
                        "bulldog": "wordnet bulldog.n.01 is a kind of dog.n.01"}
    manifest = rows(out / "manifest.csv")
    assert {r["class"] for r in manifest} == {"calendar", "wallet"}
    assert len([r for r in manifest if r["class"] == "calendar"]) == 3  # --max-per-class
    assert len({r["set"] for r in manifest if r["class"] == "wallet"}) == 3  # three of its four sets
    for r in manifest:
        image = Image.open(out / r["path"])
        assert image.size == (24, 24) and image.mode == "RGB"
        assert r["path"] == f"images/{r['class']}/{r['set']}--{r['icon']}.png"
    assert rows(out / "train.csv") == [{"img_name": r["path"], "class": r["class"]} for r in manifest]
    assert rows(out / "classes.csv")[0] == {"class": "calendar", "sets": "3", "images": "3"}
    summary = json.loads((out / "pool.json").read_text())
    assert summary["format"] == "devise-pool" and summary["classes"] == 2 and summary["images"] == 6
    assert summary["settings"]["iconify_json"] == "9.9.9"
    assert summary["excluded_by"] == {"brand": 1, "review": 1, "name": 1, "wordnet": 1}
    assert sum(summary["images_by_licence"].values()) == 6
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "| alpha | " in attribution and "MIT" in attribution and "gnu" not in attribution


def test_build_refuses_when_nothing_is_shared(tmp_path, wn):
    kept, _ = pool_collections(fake_collections(fake_iconify(tmp_path)))
    with pytest.raises(DatasetError, match="no icon name is drawn by 9 or more of the 4 sets"):
        build_icon_pool(tmp_path / "pool", wn, load_concepts(wn), kept, size=16, min_sets=9, brands=set(), review={})


def test_cli_builds_the_pool(tmp_path):
    node_modules = fake_iconify(tmp_path)
    result = CliRunner().invoke(main, ["data", "pool", str(tmp_path / "pool"), "--size", "16", "--min-sets", "3",
                                       "--max-per-class", "2", "--node-modules", str(node_modules),
                                       "--sets", FAKE_SETS],
                                env={"DEVISE_NODE_MODULES": None, "DEVISE_POOL_SIZE": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "left out 3 sets: brands: category Logos; gnu: licence GPL-3.0; somemoji: emoji set"
    assert lines[-3].startswith("rendered 4 images of 2 classes from ")
    # github is a brand (drawn by a logo set, no WordNet noun); beer is excluded by the shipped review
    assert lines[-2] == "left out 4 classes in >= 3 sets: 1 by brand, 1 by name, 1 by review, 1 by wordnet"
    assert lines[-1] == f"wrote {tmp_path / 'pool'}"
