"""wordnet.label_vocab: labels given where they are used, embedded on the fly and cached
(tiny vectors, real WordNet)."""
from __future__ import annotations

import numpy as np
import pytest

from wordnet import label_vocab as lv
from wordnet.base.errors import DeviseError, VectorsError


@pytest.fixture(scope="module")
def wn():
    from wordnet.reader import load_wordnet

    return load_wordnet()


def test_parse_and_read_label_lists(tmp_path):
    assert lv.parse_labels(" cat, dog ,, snow leopard ") == ["cat", "dog", "snow leopard"]
    with pytest.raises(DeviseError) as err:
        lv.parse_labels(" , ")
    assert str(err.value) == ('--labels is empty; give labels separated by commas, '
                              'like --labels "cat, dog, snow leopard"')
    f = tmp_path / "labels.txt"
    f.write_text("# mine\ncat\n\nred sports car\n")
    assert lv.read_labels_file(f) == ["cat", "red sports car"]
    with pytest.raises(DeviseError, match=f"labels file {tmp_path / 'nope.txt'} does not exist"):
        lv.read_labels_file(tmp_path / "nope.txt")
    d = tmp_path / "d.csv"
    d.write_text("class,text\ntiger,a big feline, with stripes\n")
    assert lv.read_descriptions(d) == {"tiger": "a big feline, with stripes"}
    d.write_text("tiger\n")
    with pytest.raises(DeviseError, match=r"d.csv:1: expected 'class,text'"):
        lv.read_descriptions(d)


def test_vectors_wordnet_senses_free_phrases_and_descriptions(tiny_kv, tiny_kv_file, wn):
    from wordnet.labels import wnid_of
    from wordnet.vectors.label_text import synset_vector, text_vector
    from wordnet.vectors.words import phrase_vector

    notes = []
    vocab = lv.labels_vocabulary(["cat", "snow leopard", "guitar piano", "tiger", "Cat"], tiny_kv_file,
                                 label_text="lemmas+hypernyms", descriptions={"tiger": "large feline animal"},
                                 overrides={"tiger": "tiger.n.02"}, notify=notes.append, cache=False)
    cat, leopard, tiger = wn.synset("cat.n.01"), wn.synset("snow_leopard.n.01"), wn.synset("tiger.n.02")  # pinned
    assert vocab.wnids == [wnid_of(cat), wnid_of(leopard), "text:guitar piano", wnid_of(tiger)]
    assert vocab.labels == ["cat", "snow leopard", "guitar piano", "tiger"]  # as written
    assert vocab.synsets == ["cat.n.01", "snow_leopard.n.01", "", "tiger.n.02"]
    np.testing.assert_allclose(vocab.vectors[0], synset_vector(tiny_kv, cat, "lemmas+hypernyms"), atol=1e-6)
    np.testing.assert_allclose(vocab.vectors[2], phrase_vector(tiny_kv, "guitar piano"), atol=1e-6)
    np.testing.assert_allclose(vocab.vectors[3], text_vector(tiny_kv, "large feline animal"), atol=1e-6)
    assert vocab.attrs["label_text"] == "lemmas+hypernyms" and vocab.attrs["vector_source"] == str(tiny_kv_file)
    assert notes == ["'guitar piano' is not a WordNet noun: embedded from its words, no synset, so hierarchical "
                     "scores do not apply to it",
                     "labels naming the same synset are kept once: 'cat' = 'Cat' (cat.n.01)"]
    assert lv.is_free_phrase(vocab.wnids[2]) and not lv.is_free_phrase(vocab.wnids[0])
    ids = lv.labels_vocabulary(["n02084071", "tiger.n.02"], tiny_kv_file, cache=False)
    assert ids.labels == ["dog", "tiger"]  # a wnid or synset name is shown by its synset's name


def test_labels_without_a_vector_are_named_with_suggestions(tiny_kv_file):
    with pytest.raises(VectorsError) as err:
        lv.labels_vocabulary(["dog", "zebra", "tigr"], tiny_kv_file, cache=False)
    assert str(err.value) == "2 labels have no vector in tiny.kv: 'zebra'; 'tigr' (did you mean: tiger?)"
    with pytest.raises(VectorsError) as err:
        lv.labels_vocabulary(["dog"], tiny_kv_file, descriptions={"dog": "qqq zzz"}, cache=False)
    assert str(err.value) == "label has no vector in tiny.kv: 'dog' (no word of its description has one)"


def test_second_call_comes_from_the_cache_without_vectors_or_wordnet(tiny_kv_file, monkeypatch, devise_home):
    import wordnet.reader
    import wordnet.vectors.loading

    first = lv.labels_vocabulary(["wolf", "guitar piano"], tiny_kv_file, notify=lambda t: None)
    cached = list((devise_home / lv.CACHE_DIR).glob("*.h5"))
    assert cached

    def forbidden(*a, **k):
        raise AssertionError("the cached call loaded vectors or WordNet")

    monkeypatch.setattr(wordnet.vectors.loading, "load_vectors", forbidden)
    monkeypatch.setattr(wordnet.reader, "load_wordnet", forbidden)
    notes = []
    again = lv.labels_vocabulary(["wolf", "guitar piano"], tiny_kv_file, notify=notes.append)
    assert again.wnids == first.wnids and np.array_equal(again.vectors, first.vectors)
    assert notes and notes[0].startswith("'guitar piano' is not a WordNet noun")  # said on cached calls too
    with pytest.raises(AssertionError):  # another label text is another cache entry
        lv.labels_vocabulary(["wolf", "guitar piano"], tiny_kv_file, label_text="lemmas+gloss")


def test_an_unknown_id_is_unknown_not_a_phrase_without_a_vector(tiny_kv_file):
    """n99999999 or foo.n.01 name a synset or nothing: "no vector" would send the user to other vectors."""
    from wordnet.base.errors import UnknownLabelError

    for label in ("n99999999", "foo.n.01"):
        with pytest.raises(UnknownLabelError, match=f"unknown label: '{label}'"):
            lv.labels_vocabulary(["dog", label], tiny_kv_file, cache=False)


@pytest.mark.parametrize("header", ["class,description", "Label,Text", "label,description"])
def test_a_descriptions_header_is_not_a_label(tmp_path, header):
    d = tmp_path / "d.csv"
    d.write_text(f"{header}\ntiger,a big feline\n")
    assert lv.read_descriptions(d) == {"tiger": "a big feline"}
