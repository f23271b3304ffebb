"""Labels -> synsets on the real WordNet: wnids, synset names, words, overrides, errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from wordnet.base.errors import DeviseError, UnknownLabelError
from wordnet.labels import (
    display_label,
    load_overrides,
    noun_senses,
    read_label_list,
    resolve_label,
    resolve_labels,
    short_definition,
    suggestions,
    synset_of_wnid,
    synset_record,
    wnid_of,
)
from wordnet.reader import load_wordnet

SHARED = Path("/work/shared/data")
HINT = ". Use a wnid (n02084071), a synset name (dog.n.01) or noun words, or map it in an overrides CSV (label,synset)"


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


def test_wnid_round_trip(wn):
    dog = wn.synset("dog.n.01")
    assert wnid_of(dog) == "n02084071"
    assert synset_of_wnid(wn, "n02084071") == dog
    assert wnid_of(wn.synset("snow_leopard.n.01")) == "n02128757"


@pytest.mark.parametrize("wnid, message", [
    ("n99999999", "wnid n99999999 is not in WordNet 3.0"),
    ("dog", "'dog' is not a wnid (expected like n02084071)"),
    ("n0208407", "'n0208407' is not a wnid (expected like n02084071)"),
])
def test_bad_wnids(wn, wnid, message):
    with pytest.raises(UnknownLabelError) as err:
        synset_of_wnid(wn, wnid)
    assert str(err.value) == message


@pytest.mark.parametrize("label", ["n02128757", "snow_leopard.n.01", "snow leopard", "snow_leopard",
                                   "Snow Leopard", "  snow   leopard "])
def test_every_label_form_resolves(wn, label):
    assert resolve_label(wn, label).name() == "snow_leopard.n.01"


def test_words_take_the_first_noun_sense_unless_overridden(wn):
    assert resolve_label(wn, "crane").name() == "crane.n.01"  # Stephen Crane, the writer
    overrides = {"Crane": "crane.n.05"}
    assert resolve_label(wn, "crane", overrides).name() == "crane.n.05"  # the bird
    assert resolve_label(wn, "CRANE", {"crane": "n02012849"}).name() == "crane.n.05"
    assert resolve_label(wn, "dogs").name() == "dog.n.01"  # plural via WordNet's morphy
    assert resolve_label(wn, "run").name() == "run.n.01"  # the noun sense, not a verb


def test_unknown_label_names_it_with_suggestions(wn):
    with pytest.raises(UnknownLabelError) as err:
        resolve_label(wn, "snow leprd")
    assert str(err.value) == "unknown label: 'snow leprd' (did you mean: snow leopard, snow blower?)" + HINT


def test_resolve_labels_names_all_unknown_labels(wn):
    with pytest.raises(UnknownLabelError) as err:
        resolve_labels(wn, ["dog", "guitr", "cat", "qqxqzz", "dog.n.99"])
    assert str(err.value) == ("unknown 3 labels: 'guitr' (did you mean: guitar, guilt, gut?); 'qqxqzz'; "
                              "'dog.n.99'" + HINT)
    assert [s.name() for s in resolve_labels(wn, ["dog", "n02128757", "cat.n.01"])] == [
        "dog.n.01", "snow_leopard.n.01", "cat.n.01"]


def test_bad_override_target_is_blamed(wn):
    with pytest.raises(UnknownLabelError) as err:
        resolve_labels(wn, ["dog", "crane"], {"crane": "crane.n.55"})
    assert str(err.value) == ("override for 'crane' names 'crane.n.55', which is not a WordNet synset; "
                              "fix the overrides file")


def test_suggestions_are_noun_lemma_names(wn):
    assert suggestions(wn, "elephent") == ["elephant", "element", "eleventh"]
    assert suggestions(wn, "   ") == []


def test_load_overrides(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text("label,synset\n# birds, not machines\ncrane,crane.n.05\n\n\"jaguar, the car\",n03595614\n")
    assert load_overrides(path) == {"crane": "crane.n.05", "jaguar, the car": "n03595614"}


@pytest.mark.parametrize("text, line, got", [
    ("crane,crane.n.05\ndog\n", 2, "'dog'"),
    ("crane,crane.n.05,extra\n", 1, "'crane,crane.n.05,extra'"),
    ("a,b\n,dog.n.01\n", 2, "',dog.n.01'"),
])
def test_bad_override_rows_name_file_and_line(tmp_path, text, line, got):
    path = tmp_path / "o.csv"
    path.write_text(text)
    with pytest.raises(DeviseError) as err:
        load_overrides(path)
    assert str(err.value) == (f"{path}:{line}: expected two columns 'label,synset' "
                              f"(like: crane,crane.n.05), got {got}")


def test_missing_overrides_file(tmp_path):
    with pytest.raises(DeviseError, match=r"absent\.csv: cannot read overrides file \(FileNotFoundError"):
        load_overrides(tmp_path / "absent.csv")


def test_display_label_and_short_definition(wn):
    assert display_label(wn.synset("german_shepherd.n.01")) == "German shepherd"
    assert display_label(wn.synset("snow_leopard.n.01")) == "snow leopard"
    dog = wn.synset("dog.n.01")
    leopard = wn.synset("snow_leopard.n.01")
    assert short_definition(leopard) == "large feline of upland central Asia having long thick whitish fur"
    assert short_definition(dog) == ("a member of the genus Canis (probably descended from the common wolf) "
                                     "that has been domesticated by…")
    assert short_definition(dog, width=40) == "a member of the genus Canis (probably…"


def test_shipped_imagenet_lists():
    in1k = read_label_list("imagenet1k")
    in21k = read_label_list("imagenet21k")
    assert len(in1k) == len(set(in1k)) == 1000
    assert len(in21k) == len(set(in21k)) == 21841
    assert in1k[0] == "n01440764"
    assert set(in1k) - set(in21k) == {"n04399382"}  # teddy bear is the one 1K label not in 21K
    if SHARED.is_dir():  # dev machines: the shipped copies are identical
        assert in1k == (SHARED / "imagenet1k_wnids.txt").read_text().split()
        assert in21k == (SHARED / "imagenet21k_wnids.txt").read_text().split()


def test_shipped_zero_shot_test_sets():
    """The published ImageNet zero-shot sets (ConSE, SYNC, GCNZ, DGP): 2-hop within 3-hop within all,
    all = the 21K classes that are not 1K classes."""
    in1k, in21k = set(read_label_list("imagenet1k")), set(read_label_list("imagenet21k"))
    two, three, every = (read_label_list(n) for n in ("imagenet-2hop", "imagenet-3hop", "imagenet-all"))
    assert ((len(two), len(three), len(every))
            == (len(set(two)), len(set(three)), len(set(every)))
            == (1549, 7860, 20842))
    assert set(two) < set(three) < set(every) and set(every) == in21k - in1k
    if SHARED.is_dir():
        for name, got in (("2hop", two), ("3hop", three), ("all", every)):
            assert got == (SHARED / f"imagenet_zsl_{name}_wnids.txt").read_text().split()


def test_read_label_list_file_with_comments(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# my classes\ndog\n\n  snow leopard   # the big cat\nn02084071\n")
    assert read_label_list(path) == ["dog", "snow leopard", "n02084071"]


def test_read_label_list_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(DeviseError) as err:
        read_label_list(empty)
    assert str(err.value) == f"{empty}: no labels (expected one label per line)"
    with pytest.raises(DeviseError) as err:
        read_label_list(tmp_path / "nope.txt")
    assert str(err.value) == (f"{tmp_path / 'nope.txt'}: no such file; give a path or one of "
                              f"imagenet1k, imagenet21k, imagenet-2hop, imagenet-3hop, imagenet-all")


def test_noun_senses_first_is_the_label_sense_and_explicit_ids_mean_one(wn, tmp_path):
    crane = noun_senses(wn, "crane")
    assert crane[0] == resolve_label(wn, "crane") and len(crane) == len(set(crane)) == len(wn.synsets("crane", "n"))
    assert noun_senses(wn, "crane", first_only=True) == crane[:1]
    assert noun_senses(wn, "n02084071") == [wn.synset("dog.n.01")]
    assert noun_senses(wn, "crane", {"crane": "crane.n.05"})[0] == wn.synset("crane.n.05")
    with pytest.raises(UnknownLabelError):
        noun_senses(wn, "snow leprd")


def test_synset_record_has_the_longest_hypernym_path_root_first(wn):
    record = synset_record(wn.synset("snow_leopard.n.01"))
    assert (record["wnid"], record["synset"], record["label"]) == ("n02128757", "snow_leopard.n.01", "snow leopard")
    assert record["lemmas"] == ["snow_leopard", "ounce", "Panthera_uncia"]
    assert record["hypernym_path"][0] == "entity.n.01" and record["hypernym_path"][-1] == "big_cat.n.01"


def test_a_verb_synset_is_not_a_label(wn):
    from wordnet import vocab_build

    with pytest.raises(UnknownLabelError, match=r"'run.v.01' is not a noun synset: labels are nouns"):
        resolve_label(wn, "run.v.01")
    with pytest.raises(UnknownLabelError, match="is not a noun synset"):
        vocab_build.subtree_synsets(wn, "run.v.01")  # `vocab build --subtree run.v.01` built verbs


@pytest.mark.parametrize("label, name", [("café", "cafe.n.01"), ("crème brûlée", "creme_brulee.n.01"),
                                         ("Crème Brûlée", "creme_brulee.n.01")])
def test_accented_labels_find_their_unaccented_lemma(wn, label, name):
    assert resolve_label(wn, label).name() == name
