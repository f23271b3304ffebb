"""`devise vocab build / info / nearest` through Click's CliRunner, with tiny real vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from wordnet.vectors.label_text import synset_vector
from wordnet.vectors.loading import file_checksum
from wordnet.vocab import Vocabulary

NO_ENV = {"DEVISE_VECTORS": None}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env=NO_ENV)


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("dog\ntiger.n.02\nsnow leopard\nn03467517\nviolin\ncar\ntruck\napple\n")
    return path


@pytest.fixture(scope="module")
def vocab_file(labels_file, tiny_kv_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("vocab") / "small.h5"
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--synsets", labels_file)
    assert res.exit_code == 0, res.output
    assert res.output == (f"wrote {out}: 8 labels x 16 dims from synsets {labels_file} (vectors tiny.kv)\n"
                          "coverage: 8 of 8 labels have vectors (100.0%)\n")
    return out


def test_build_writes_a_real_vocabulary(vocab_file, tiny_kv, tiny_kv_file):
    from wordnet.reader import load_wordnet

    vocab = Vocabulary.load(vocab_file)
    assert vocab.synsets == ["dog.n.01", "tiger.n.02", "snow_leopard.n.01", "guitar.n.01", "violin.n.01",
                             "car.n.01", "truck.n.01", "apple.n.01"]
    assert vocab.labels[2] == "snow leopard"
    np.testing.assert_allclose(vocab.vectors[1], synset_vector(tiny_kv, load_wordnet().synset("tiger.n.02")),
                               atol=1e-6)
    assert vocab.attrs["vector_checksum"] == file_checksum(tiny_kv_file)


def test_info_json_and_table(vocab_file, tiny_kv_file, labels_file):
    res = run("vocab", "info", vocab_file, "--json", "--head", "2")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["labels"] == 8 and info["dim"] == 16 and info["skipped"] == 0
    assert info["vector_source"] == str(tiny_kv_file.resolve())
    assert info["source"] == f"synsets {labels_file}"
    assert [r["synset"] for r in info["head"]] == ["dog.n.01", "tiger.n.02"]
    res = run("vocab", "info", vocab_file)
    assert res.exit_code == 0 and "snow_leopard.n.01" in res.output and "vector_source" in res.output


def test_nearest_word_phrase_and_synset(vocab_file):
    res = run("vocab", "nearest", vocab_file, "snow leopard", "--top", "3", "--json")
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)
    assert [set(h) for h in hits] == [{"wnid", "synset", "label", "score"}] * 3
    assert hits[0]["synset"] == "snow_leopard.n.01" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert {h["synset"] for h in hits[1:]} <= {"dog.n.01", "tiger.n.02"}  # the animal cluster
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]

    vocab = Vocabulary.load(vocab_file)
    res = run("vocab", "nearest", vocab_file, "n03467517", "--json")  # a synset already in the vocabulary
    hits = json.loads(res.output)
    assert len(hits) == 8 and hits[0]["label"] == "guitar" and hits[1]["label"] == "violin"
    scores = vocab.vectors @ vocab.vectors[3]
    assert [h["wnid"] for h in hits] == [vocab.wnids[i] for i in np.argsort(-scores)]

    res = run("vocab", "nearest", vocab_file, "cat.n.01", "--top", "2", "--json")  # synset not in it
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["synset"] in {"dog.n.01", "tiger.n.02", "snow_leopard.n.01"}

    res = run("vocab", "nearest", vocab_file, "automobile", "--top", "2")
    assert res.exit_code == 0 and "car.n.01" in res.output and "truck.n.01" in res.output


def test_skip_missing_lists_skipped(tmp_path, tiny_kv_file):
    labels = tmp_path / "l.txt"
    labels.write_text("cat\nquark.n.01\n")
    out = tmp_path / "v.h5"
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--synsets", labels)
    assert res.exit_code == 1
    assert res.output == ("Error: 1 of 2 labels have no vector in tiny.kv: n09401834 (quark.n.01); "
                          "pass --skip-missing to leave them out, or use other vectors\n")
    assert not out.exists()
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--synsets", labels, "--skip-missing")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1:] == ["coverage: 1 of 2 labels have vectors (50.0%)",
                                           "skipped 1 labels without vectors: n09401834 (quark.n.01)"]
    assert Vocabulary.load(out).synsets == ["cat.n.01"]


def test_subtree_source(tmp_path, tiny_kv_file):
    out = tmp_path / "cats.h5"
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--subtree", "big_cat.n.01", "--skip-missing")
    assert res.exit_code == 0, res.output
    assert set(Vocabulary.load(out).synsets) == {"big_cat.n.01", "leopard.n.02", "snow_leopard.n.01",
                                                 "tiger.n.02", "lion.n.01"}


def test_bad_input_is_one_line_error(tmp_path, tiny_kv_file, vocab_file, labels_file):
    out = tmp_path / "v.h5"
    garbage = tmp_path / "vectors.bin"
    garbage.write_bytes(b"\x00\x01 not vectors at all")
    res = run("vocab", "build", out, "--vectors", garbage, "--synsets", labels_file)
    assert res.exit_code == 1
    assert res.output == (f"Error: {garbage} is not a word-vector file (tried gensim .kv, fastText .bin, "
                          "word2vec binary, word2vec/GloVe text)\n")

    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--synsets", empty)
    assert res.exit_code == 1
    assert res.output == f"Error: {empty}: no labels (expected one label per line)\n"

    res = run("vocab", "build", out, "--synsets", labels_file)  # no --vectors and nothing trained
    assert res.exit_code == 1
    assert res.output == "Error: no word vectors: run `devise vectors train` or pass --vectors FILE\n"

    unknown = tmp_path / "unknown.txt"
    unknown.write_text("dog\nsnow leperd\n")
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--synsets", unknown)
    assert res.exit_code == 1 and res.output.startswith("Error: unknown label: 'snow leperd'")
    assert "snow leopard" in res.output and res.output.count("\n") == 1

    res = run("vocab", "build", out, "--vectors", tiny_kv_file)
    assert res.exit_code == 2 and "give exactly one label source" in res.output
    res = run("vocab", "build", out, "--vectors", tiny_kv_file, "--all-nouns", "--subtree", "dog")
    assert res.exit_code == 2 and "(got --subtree, --all-nouns)" in res.output
    assert not out.exists()

    from gensim.models import KeyedVectors

    small = KeyedVectors(4)
    small.add_vectors(["dog", "tiger"], np.eye(2, 4, dtype=np.float32))
    small_file = tmp_path / "small.kv"
    small.save(str(small_file))
    res = run("vocab", "nearest", vocab_file, "dog", "--vectors", small_file)
    assert res.exit_code == 1
    assert res.output == (f"Error: {vocab_file} has 16-d vectors but small.kv is 4-d; "
                          "build the vocabulary with the same word vectors\n")

    res = run("vocab", "nearest", vocab_file, "zebra")
    assert res.exit_code == 1
    assert res.output == ("Error: 'zebra' has no vector in tiny.kv; "
                          "try another word (a synset like dog.n.01 works too)\n")
    res = run("vocab", "nearest", vocab_file, "snow leoprd")  # spelt like a word of the vectors
    assert res.exit_code == 1
    assert res.output == ("Error: 'snow leoprd' has no vector in tiny.kv; did you mean: snow leopard? "
                          "(a synset like dog.n.01 works too)\n")

    broken = tmp_path / "broken.h5"
    broken.write_bytes(vocab_file.read_bytes()[:1000])
    res = run("vocab", "info", broken)
    assert res.exit_code == 1
    assert res.output == f"Error: {broken} is corrupt or truncated (OSError); rebuild it with `devise vocab build`\n"
