"""``devise wordnet lookup`` / ``hops`` through Click's CliRunner, on the real WordNet."""
from __future__ import annotations

import functools
import json

import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from wordnet import reader as corpus

HINT = ". Use a wnid (n02084071), a synset name (dog.n.01) or noun words, or map it in an overrides CSV (label,synset)"


@pytest.fixture(scope="module", autouse=True)
def wn():
    return corpus.load_wordnet()


def run(*args):
    return CliRunner().invoke(main, ["wordnet", *args])


def test_lookup_words_shows_the_first_noun_sense():
    result = run("lookup", "Snow Leopard", "--first")
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("snow leopard", "n02128757", "snow_leopard.n.01", "snow_leopard, ounce, Panthera_uncia",
                 "large feline of upland central Asia having long thick whitish fur",
                 "entity > physical entity > object > whole > living thing > organism > animal > chordate"):
        assert text in out


def test_lookup_json_by_wnid():
    result = run("lookup", "n02084071", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{
        "wnid": "n02084071",
        "synset": "dog.n.01",
        "label": "dog",
        "lemmas": ["dog", "domestic_dog", "Canis_familiaris"],
        "definition": "a member of the genus Canis (probably descended from the common wolf) that has been "
                      "domesticated by man since prehistoric times; occurs in many breeds",
        "hypernym_path": ["entity.n.01", "physical_entity.n.01", "object.n.01", "whole.n.02", "living_thing.n.01",
                          "organism.n.01", "animal.n.01", "chordate.n.01", "vertebrate.n.01", "mammal.n.01",
                          "placental.n.01", "carnivore.n.01", "canine.n.02"],
    }]


def test_lookup_words_lists_every_noun_sense_and_overrides(tmp_path):
    result = run("lookup", "crane", "--json")
    assert result.exit_code == 0
    assert [r["synset"] for r in json.loads(result.stdout)] == [
        "crane.n.01", "crane.n.02", "grus.n.01", "crane.n.04", "crane.n.05"]
    result = run("lookup", "crane")
    assert result.stdout.splitlines()[0] == ("5 noun senses of 'crane'; as a label it maps to the first "
                                             "(pin another with --overrides CSV: label,synset)")
    for text in ("Stephen_Crane", "lifts and moves heavy objects", "large long-necked wading bird"):
        assert text in result.stdout
    assert [r["synset"] for r in json.loads(run("lookup", "crane", "--first", "--json").stdout)] == ["crane.n.01"]
    overrides = tmp_path / "o.csv"
    overrides.write_text("crane,crane.n.05\n")
    result = run("lookup", "crane", "--first", "--json", "--overrides", str(overrides))
    assert [r["synset"] for r in json.loads(result.stdout)] == ["crane.n.05"]
    result = run("lookup", "crane", "--json", "--overrides", str(overrides))
    assert [r["synset"] for r in json.loads(result.stdout)][:2] == ["crane.n.05", "crane.n.01"]
    assert run("lookup", "crane", "--all", "--json").stdout == run("lookup", "crane", "--json").stdout  # old flag


def test_lookup_unknown_label_suggests_lemma_names():
    result = run("lookup", "snow leprd")
    assert result.exit_code == 1
    assert result.output == ("Error: unknown label: 'snow leprd' (did you mean: snow leopard, snow blower?)"
                             + HINT + "\n")


def test_hops_prints_sorted_wnids(tmp_path):
    seen = tmp_path / "seen.txt"
    seen.write_text("dog\n")
    universe = tmp_path / "universe.txt"
    universe.write_text("carnivore\nwolf.n.01\nn02120997\ncat\ndog\n")  # feline by wnid
    result = run("hops", "--seen", str(seen), "--universe", str(universe), "--hops", "3")
    assert result.exit_code == 0
    assert result.stdout == "n02075296\nn02114100\nn02120997\n"
    assert result.stderr == f"3 wnids within 3 hops of 1 seen labels (universe: {universe}, 5 labels)\n"


def test_hops_output_file(tmp_path):
    seen = tmp_path / "seen.txt"
    seen.write_text("snow leopard\n")
    universe = tmp_path / "universe.txt"
    universe.write_text("big cat\nfeline\nleopard.n.02\ncat\n")
    out = tmp_path / "hops.txt"
    result = run("hops", "--seen", str(seen), "--universe", str(universe), "--hops", "3", "--output", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    # big cat (parent), then feline (its parent) and leopard (its child); cat (under feline) is 4 hops
    assert out.read_text() == "n02120997\nn02127808\nn02128385\n"
    assert result.stderr == f"3 wnids within 3 hops of 1 seen labels (universe: {universe}, 4 labels) -> {out}\n"


@pytest.mark.slow
def test_hops_default_universe_is_all_nouns(tmp_path):
    seen = tmp_path / "seen.txt"
    seen.write_text("snow leopard\n")
    result = run("hops", "--seen", str(seen), "--hops", "2")
    assert result.exit_code == 0
    assert result.stdout == "n02127808\n"  # big cat; snow leopard has no hyponyms
    assert result.stderr == "1 wnids within 2 hops of 1 seen labels (universe: all nouns, 82115 labels)\n"


@pytest.mark.parametrize("content, message", [
    (None, "{path}: no such file; give a path or one of imagenet1k, imagenet21k, imagenet-2hop, "
           "imagenet-3hop, imagenet-all"),
    ("# nothing here\n", "{path}: no labels (expected one label per line)"),
    ("dog\nguitr\n", "unknown label: 'guitr' (did you mean: guitar, guilt, gut?)" + HINT),
])
def test_hops_bad_seen_file(tmp_path, content, message):
    path = tmp_path / "seen.txt"
    if content is not None:
        path.write_text(content)
    result = run("hops", "--seen", str(path), "--universe", "imagenet1k", "--hops", "2")
    assert result.exit_code == 1
    assert result.output == "Error: " + message.format(path=path) + "\n"


def test_hops_needs_hops_of_at_least_one():
    result = run("hops", "--seen", "imagenet1k", "--hops", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--hops': 0 is not in the range x>=1." in result.output


def test_missing_wordnet_is_a_one_line_error(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(corpus, "load_wordnet", functools.lru_cache(maxsize=1)(corpus.load_wordnet.__wrapped__))
    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setenv("DEVISE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEVISE_WORDNET_DIR", str(tmp_path))
    result = run("lookup", "dog")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: WordNet not found (no NLTK corpora/wordnet, no WordNet files in {tmp_path}): run "
        "`apt-get install wordnet-base wordnet-sense-index` or `python -m nltk.downloader wordnet`\n")


def test_help_has_examples():
    for cmd in ("lookup", "hops"):
        result = run(cmd, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.output and f"devise wordnet {cmd}" in result.output
