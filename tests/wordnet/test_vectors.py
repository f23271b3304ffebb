"""wordnet.vectors.loading: format detection/loading, checksums, synset vectors; `devise vectors info`."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from wordnet.base.errors import VectorsError
from wordnet.vectors.label_text import label_vectors, synset_vector
from wordnet.vectors.loading import default_vectors_path, detect_format, file_checksum, load_vectors, resolve_vectors
from wordnet.vectors.words import phrase_vector

TRIED = "tried gensim .kv, fastText .bin, word2vec binary, word2vec/GloVe text"


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def wn():
    from wordnet.reader import load_wordnet

    return load_wordnet()


# -- formats -------------------------------------------------------------------------
def _write(kv, path, kind):
    if kind == "kv":
        kv.save(str(path))
    elif kind == "word2vec-binary":
        kv.save_word2vec_format(str(path), binary=True)
    elif kind == "word2vec-text":
        kv.save_word2vec_format(str(path))
    elif kind == "glove-text":
        kv.save_word2vec_format(str(path), write_header=False)


@pytest.mark.parametrize("kind, name", [
    ("kv", "v.kv"),
    ("word2vec-binary", "GoogleNews-like.bin"),
    ("word2vec-text", "vectors.vec"),
    ("glove-text", "glove.6B.16d.txt"),
    ("word2vec-binary", "misnamed.txt"),  # content decides, not the suffix
    ("word2vec-text", "vectors.txt.gz"),
])
def test_every_gensim_format_round_trips(tiny_kv, tmp_path, kind, name):
    path = tmp_path / name
    _write(tiny_kv, path, kind)
    assert detect_format(path) == kind
    kv = load_vectors(path)
    assert list(kv.index_to_key) == list(tiny_kv.index_to_key)
    np.testing.assert_allclose(kv.vectors, tiny_kv.vectors, rtol=0, atol=1e-6)


def test_fasttext_bin(tmp_path):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    sentences = [["the", "snow", "leopard", "hunts"], ["a", "tiger", "hunts", "deer"]] * 20
    model = FastText(sentences, vector_size=8, min_count=1, epochs=2, workers=1, seed=3, min_n=2, max_n=3,
                     bucket=2000)
    path = tmp_path / "cc.en.8.bin"
    save_facebook_model(model, str(path))
    assert detect_format(path) == "fasttext"
    kv = load_vectors(path)
    assert set(kv.index_to_key) == set(model.wv.index_to_key)
    np.testing.assert_allclose(kv["leopard"], model.wv["leopard"], atol=1e-6)


def test_garbage_and_damaged_files_are_one_clear_error(tmp_path, tiny_kv):
    text = tmp_path / "notes.txt"
    text.write_text("hello world\nthis is not a vectors file\n")
    with pytest.raises(VectorsError) as err:
        load_vectors(text)
    assert str(err.value) == f"{text} is not a word-vector file ({TRIED})"

    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(VectorsError, match="is not a word-vector file"):
        load_vectors(empty)

    good = tmp_path / "ok.kv"
    tiny_kv.save(str(good))
    truncated = tmp_path / "cut.kv"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(VectorsError) as err:
        load_vectors(truncated)
    assert str(err.value).startswith(f"{truncated} looks like kv vectors but could not be read (")

    with pytest.raises(VectorsError, match="does not exist"):
        load_vectors(tmp_path / "nope.bin")


def test_checksum_and_default_paths(tmp_path, tiny_kv_file, devise_home):
    expected = "sha256:" + hashlib.sha256(tiny_kv_file.read_bytes()).hexdigest()
    assert file_checksum(tiny_kv_file) == expected
    assert file_checksum(tiny_kv_file) == expected  # cached answer is the same
    assert default_vectors_path() == devise_home / "vectors" / "skipgram-300.kv"
    assert resolve_vectors(tiny_kv_file) == tiny_kv_file
    with pytest.raises(VectorsError) as err:
        resolve_vectors(None)
    assert str(err.value) == "no word vectors: run `devise vectors train` or pass --vectors FILE"


# -- synset vectors --------------------------------------------------------------------
def test_synset_vector_matches_numpy_reference(tiny_kv, wn):
    dog = wn.synset("dog.n.01")  # lemmas: dog, domestic_dog (phrase token), Canis_familiaris (two words)
    assert dog.lemma_names() == ["dog", "domestic_dog", "Canis_familiaris"]
    canis = _unit(np.mean([_unit(tiny_kv["canis"]), _unit(tiny_kv["familiaris"])], axis=0))
    expected = _unit(np.mean([_unit(tiny_kv["dog"]), _unit(tiny_kv["domestic_dog"]), canis], axis=0))
    got = synset_vector(tiny_kv, dog)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)

    # snow_leopard: only the phrase token has a vector (not "ounce", not "Panthera uncia")
    snow = wn.synset("snow_leopard.n.01")
    np.testing.assert_allclose(synset_vector(tiny_kv, snow), _unit(tiny_kv["snow_leopard"]), atol=1e-6)
    assert synset_vector(tiny_kv, wn.synset("quark.n.01")) is None


def test_phrase_vector_case_variants_and_words():
    from gensim.models import KeyedVectors

    kv = KeyedVectors(3)
    kv.add_vectors(["Guitar", "snow", "leopard"], np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3]], np.float32))
    np.testing.assert_allclose(phrase_vector(kv, "guitar"), [1, 0, 0])
    np.testing.assert_allclose(phrase_vector(kv, "Snow Leopard"), _unit([0, 1, 1]), atol=1e-6)
    assert phrase_vector(kv, "snow tiger") is None  # every word must have a vector
    assert phrase_vector(kv, "  ") is None


def test_label_vectors_keeps_order_and_lists_missing(tiny_kv, wn):
    synsets = [wn.synset(n) for n in ("tiger.n.02", "quark.n.01", "guitar.n.01")]
    matrix, missing = label_vectors(tiny_kv, synsets)
    assert missing == [synsets[1]]
    assert matrix.shape == (2, 16) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[1], synset_vector(tiny_kv, synsets[2]))
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)


# -- CLI: devise vectors info --------------------------------------------------------------
def test_vectors_info_json(tiny_kv, tiny_kv_file):
    res = CliRunner().invoke(main, ["vectors", "info", str(tiny_kv_file), "-n", "tiger", "-n", "zebra",
                                    "--top", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {k: out[k] for k in ("path", "format", "words", "dim")} == {
        "path": str(tiny_kv_file), "format": "kv", "words": len(tiny_kv), "dim": 16}
    assert out["checksum"] == file_checksum(tiny_kv_file)
    expected = [w for w, _ in tiny_kv.most_similar("tiger", topn=3)]
    assert [w for w, _ in out["neighbours"]["tiger"]] == expected
    assert out["neighbours"]["zebra"] is None


def test_vectors_info_table_and_errors(tmp_path, tiny_kv_file):
    res = CliRunner().invoke(main, ["vectors", "info", str(tiny_kv_file)])
    assert res.exit_code == 0, res.output
    assert "tiger" in res.output and "dim" in res.output
    bad = tmp_path / "bad.vec"
    bad.write_text("just some words\n")
    res = CliRunner().invoke(main, ["vectors", "info", str(bad)])
    assert res.exit_code == 1
    assert res.output == f"Error: {bad} is not a word-vector file ({TRIED})\n"
    res = CliRunner().invoke(main, ["vectors", "info"], env={"DEVISE_VECTORS": None})
    assert res.exit_code == 1
    assert res.output == "Error: no word vectors: run `devise vectors train` or pass --vectors FILE\n"


# -- CLI: devise vectors train (the quick paths; the real run is @slow) ---------------------
def test_vectors_train_keeps_existing_output_and_checks_gcide(tmp_path, tiny_kv_file):
    res = CliRunner().invoke(main, ["vectors", "train", str(tiny_kv_file)])
    assert res.exit_code == 0
    assert res.output == f"{tiny_kv_file} already exists; pass --force to retrain\n"
    missing = tmp_path / "no.dz"
    res = CliRunner().invoke(main, ["vectors", "train", str(tmp_path / "v.kv"), "--gcide", str(missing)])
    assert res.exit_code == 1
    assert res.output == f"Error: GCIDE file {missing} does not exist; install dict-gcide or pass --no-gcide\n"
    assert not (tmp_path / "v.kv").exists()


@pytest.mark.slow
def test_vectors_train_small_on_wordnet_only(tmp_path):
    out = tmp_path / "small.kv"
    res = CliRunner().invoke(main, ["vectors", "train", str(out), "--no-gcide", "--dim", "24", "--epochs", "1",
                                    "--min-count", "5", "--window", "5"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "WordNet..." and lines[1].startswith("corpus: ") and " tokens, " in lines[1]
    assert lines[2:4] == ["vocabulary...", "epoch 1/1..."]
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: [\d,]+ words x 24 dims, trained in [\d.]+ s on \d+ workers",
                        lines[4])
    kv = load_vectors(out)
    assert kv.vector_size == 24 and "tiger" in kv.key_to_index and "snow_leopard" in kv.key_to_index


def test_file_checksum_is_cached_on_disk(tmp_path, monkeypatch):
    import wordnet.vectors.loading as V

    f = tmp_path / "v.txt"
    f.write_text("2 2\na 1 0\nb 0 1\n")
    first = file_checksum(f)
    assert first == "sha256:" + __import__("hashlib").sha256(f.read_bytes()).hexdigest()
    V._CHECKSUMS.clear()  # a new process: only the data home's cache remains
    monkeypatch.setattr(V.hashlib, "sha256", lambda: (_ for _ in ()).throw(AssertionError("hashed again")))
    assert file_checksum(f) == first
    f.write_text("2 2\na 1 0\nb 0 2\n")  # a changed file (size or mtime) is hashed again
    with pytest.raises(AssertionError, match="hashed again"):
        file_checksum(f)
