"""`devise index` and `devise search` end to end on a tiny bundle (MobileNetV2, weights=None, 32 px).

The untrained backbone shrinks activations to ~1e-11, so the fixture rescales the head:
the hidden layer's kernel is multiplied up and its BatchNorm statistics are set to those
of the test images, which spreads the embeddings over the sphere. Expected rankings are
NumPy cosine rankings of embeddings computed by calling the Keras embedder directly on
``decode_images`` pixels, against word vectors from the session's tiny KeyedVectors.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.tiny import save_bundle, tiny_model

LABELS = [("n02084071", "dog.n.01", "dog"), ("n02121808", "domestic_cat.n.01", "cat"), ("n02958343", "car.n.01", "car")]
COLOURS = ["red", "navy", "gold", "white"]


def write_png(path, seed=None, colour=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is not None:
        Image.new("RGB", (40, 30), colour).save(path)
    else:
        rng = np.random.default_rng(seed)
        Image.fromarray((rng.random((36, 36, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _save_bundle(model, vocab, folder, vectors):
    from wordnet.vectors.loading import file_checksum

    return save_bundle(model, vocab, folder, softmax_trained=True,
                       provenance={"vectors": str(vectors), "vector_checksum": file_checksum(vectors)})


@pytest.fixture(scope="module")
def env(tiny_kv, tiny_kv_file, tmp_path_factory):
    import keras

    import models.bundle
    from models.data.tfdata import decode_images
    from wordnet.vocab import Vocabulary

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("search")
    photos = root / "photos"
    imgs = [write_png(photos / f"noise{i}.png", seed=i) for i in range(6)]
    imgs += [write_png(photos / "plain" / f"{c}.png", colour=c) for c in COLOURS]
    vocab = Vocabulary(wnids=[w for w, _, _ in LABELS], synsets=[s for _, s, _ in LABELS],
                       labels=[lab for _, _, lab in LABELS], definitions=["", "", ""],
                       vectors=np.stack([tiny_kv[lab] for _, _, lab in LABELS]))
    model = tiny_model(16, 3)
    hidden, bn = model.get_layer("head_hidden"), model.get_layer("head_bn")
    kernel, bias = hidden.get_weights()
    hidden.set_weights([kernel * 1e10, bias])
    pixels = decode_images(imgs, 32)[0].astype(np.float32)
    acts = np.asarray(keras.Model(model.inputs, hidden.output)(pixels, training=False))
    gamma, beta, _, _ = bn.get_weights()
    bn.set_weights([gamma, beta, acts.mean(0), acts.var(0) + 1e-6])
    bundle = _save_bundle(model, vocab, root / "bundle", tiny_kv_file)
    probs = model.get_layer("probs")
    probs.set_weights([w + 1 for w in probs.get_weights()])  # another model: same shape, other bytes
    other = _save_bundle(model, vocab, root / "other", tiny_kv_file)

    real, loaded = models.bundle.load_bundle, {}

    def memoised(path):
        if str(path) not in loaded:
            loaded[str(path)] = real(path)
        return loaded[str(path)]

    def reference(paths):
        """Embeddings straight from the Keras embedder, unit rows."""
        x = decode_images(paths, 32)[0].astype(np.float32)
        e = np.asarray(memoised(bundle).model(x, training=False), np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models.bundle, "load_bundle", memoised)
        index = root / "photos.h5"
        res = invoke("index", photos, "--model", bundle, "--output", index)
        assert res.exit_code == 0, res.output
        yield {"root": root, "photos": photos, "imgs": sorted(imgs), "bundle": bundle, "other": other,
               "index": index, "reference": reference, "kv": tiny_kv, "kv_file": tiny_kv_file,
               "first_index_stdout": res.stdout, "loaded": memoised}


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def ranking(emb, query):
    """NumPy reference: rows by decreasing cosine with ``query``, and the scores."""
    scores = emb @ (query / np.linalg.norm(query))
    order = np.argsort(-scores, kind="stable")
    return order, scores[order]


def search_json(env, query, *extra):
    res = invoke("search", env["index"], query, "--json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# -- index + search against NumPy -------------------------------------------------------
def test_index_holds_the_embeddings_of_every_image(env):
    from models.bundle import model_checksum
    from models.index.store import ImageIndex

    lines = env["first_index_stdout"].splitlines()
    assert lines[0] == f"indexed 10 images in {env['index']}: 10 new, 0 changed, 0 unchanged, 0 removed, 0 failed"
    assert re.fullmatch(r"embedded 10 images in [\d.]+ s \([\d.]+ images/s\)", lines[1])
    idx = ImageIndex.load(env["index"])
    assert idx.paths == [str(p) for p in env["imgs"]]  # folder order: sorted, recursive
    assert idx.embeddings.dtype == np.float32 and idx.embeddings.shape == (10, 16)
    np.testing.assert_allclose(idx.embeddings, env["reference"](env["imgs"]), atol=1e-5)
    assert idx.attrs["model_checksum"] == model_checksum(env["bundle"])
    assert idx.attrs["vectors"] == str(env["kv_file"]) and idx.attrs["sources"] == [str(env["photos"])]
    st = env["imgs"][0].stat()
    assert (idx.sizes[0], idx.mtimes[0]) == (st.st_size, st.st_mtime_ns)


@pytest.mark.parametrize("query", ["tiger", "snow leopard", "dog.n.01", "n02084071"])
def test_text_search_json_matches_numpy(env, query):
    from wordnet.reader import load_wordnet
    from wordnet.vectors.label_text import synset_vector
    from wordnet.vectors.words import phrase_vector

    wn = load_wordnet()
    qvec = (synset_vector(env["kv"], wn.synset("dog.n.01")) if query in ("dog.n.01", "n02084071")
            else phrase_vector(env["kv"], query))
    order, scores = ranking(env["reference"](env["imgs"]), qvec)
    out = search_json(env, query, "--top", 4)
    assert set(out) == {"index", "query", "kind", "images", "results"}
    assert (out["index"], out["query"], out["kind"], out["images"]) == (str(env["index"]), query, "text", 10)
    assert [r["path"] for r in out["results"]] == [str(env["imgs"][i]) for i in order[:4]]
    assert [r["rank"] for r in out["results"]] == [1, 2, 3, 4]
    assert [set(r) for r in out["results"]] == [{"rank", "path", "score"}] * 4
    np.testing.assert_allclose([r["score"] for r in out["results"]], scores[:4], atol=1e-5)


def test_image_query_and_top_larger_than_index(env):
    emb = env["reference"](env["imgs"])
    q = env["imgs"][2]
    order, scores = ranking(emb, emb[2])
    out = search_json(env, q, "--top", 50)
    assert out["kind"] == "image" and len(out["results"]) == 10
    assert [r["path"] for r in out["results"]] == [str(env["imgs"][i]) for i in order]
    assert out["results"][0] == {"rank": 1, "path": str(q), "score": pytest.approx(1.0, abs=1e-5)}
    np.testing.assert_allclose([r["score"] for r in out["results"]], scores, atol=1e-5)


def test_table_output_and_envvars(env):
    order, scores = ranking(env["reference"](env["imgs"]), env["kv"]["guitar"])
    res = invoke("search", env["index"], "guitar", "-k", 3, env={"DEVISE_MODEL": str(env["bundle"])})
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == f"'guitar': top 3 of 10 images in {env['index']}"
    rows = [line.replace("│", " ").split() for line in res.stdout.splitlines()[3:]]
    assert rows == [[str(r + 1), str(env["imgs"][i]), f"{s:.3f}"] for r, (i, s) in enumerate(zip(order, scores[:3]))]


def test_html_page(env, tmp_path):
    from PIL import Image

    page = tmp_path / "out" / "tiger.html"
    res = invoke("search", env["index"], "tiger", "--top", 3, "--html", page)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1] == f"wrote {page}"
    text = page.read_text(encoding="utf-8")
    order, scores = ranking(env["reference"](env["imgs"]), env["kv"]["tiger"])
    assert text.startswith("<!DOCTYPE html>") and "<title>devise search: tiger</title>" in text
    uris = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)"', text)
    assert len(uris) == 3 and "file://" in text and "<script" not in text
    thumb = Image.open(io.BytesIO(base64.b64decode(uris[0])))
    assert (thumb.format, thumb.size) == ("JPEG", (160, 160))
    positions = [text.index(f"{env['imgs'][i]}</figcaption>") for i in order[:3]]
    assert positions == sorted(positions)
    for r, s in enumerate(scores[:3], start=1):
        assert f'<span class="rank">#{r}</span> <span class="score">{s:.3f}</span>' in text


# -- incremental re-indexing ---------------------------------------------------------------
def test_reindex_embeds_only_new_and_changed_files(env, tmp_path, monkeypatch):
    from models.index.store import ImageIndex

    photos = tmp_path / "photos"
    shutil.copytree(env["photos"], photos)
    index = tmp_path / "idx.h5"
    bundle = env["loaded"](env["bundle"])
    embedded = []
    real_run = type(bundle).run_batches

    def spy(self, paths, *args, **kwargs):
        embedded.extend(str(p) for p in paths)
        return real_run(self, paths, *args, **kwargs)

    monkeypatch.setattr(type(bundle), "run_batches", spy)
    res = invoke("index", photos, "--model", env["bundle"], "--output", index, "--batch-size", 4)
    assert res.exit_code == 0 and len(embedded) == 10
    before = ImageIndex.load(index)

    added = write_png(photos / "new.png", seed=99)
    changed = photos / "noise1.png"
    write_png(changed, seed=42)
    os.utime(changed, ns=(1_000_000_000, 1_000_000_000))
    removed = photos / "plain" / "gold.png"
    removed.unlink()
    embedded.clear()
    res = invoke("index", "--model", env["bundle"], "--output", index)  # no PHOTOS: rescan the same folder
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        f"indexed 10 images in {index}: 1 new, 1 changed, 8 unchanged, 1 removed, 0 failed")
    assert res.stdout.splitlines()[1].startswith("embedded 2 images in ")
    assert sorted(embedded) == sorted([str(added), str(changed)])

    after = ImageIndex.load(index)
    assert str(removed) not in after.paths and str(added) in after.paths and len(after) == 10
    for p in after.paths:
        if p not in (str(added), str(changed)):  # reused bit for bit
            np.testing.assert_array_equal(after.embeddings[after.paths.index(p)],
                                          before.embeddings[before.paths.index(p)])
    ref = env["reference"]([changed, added])
    np.testing.assert_allclose(after.embeddings[[after.paths.index(str(changed)), after.paths.index(str(added))]],
                               ref, atol=1e-5)
    assert after.mtimes[after.paths.index(str(changed))] == 1_000_000_000

    embedded.clear()
    res = invoke("index", photos, "--model", env["bundle"], "--output", index)
    assert res.stdout.splitlines()[0].endswith(": 0 new, 0 changed, 10 unchanged, 0 removed, 0 failed")
    assert embedded == []
    res = invoke("index", photos, "--model", env["bundle"], "--output", index, "--rebuild")
    assert res.stdout.splitlines()[0].endswith(": 10 new, 0 changed, 0 unchanged, 0 removed, 0 failed")
    assert len(embedded) == 10


def test_bad_images_are_skipped_counted_and_exit_3(env, tmp_path):
    from models.index.store import ImageIndex

    good = [write_png(tmp_path / "p" / "a.png", seed=1), write_png(tmp_path / "p" / "c.png", seed=3)]
    bad = tmp_path / "p" / "b.png"
    bad.write_text("not a png")
    index = tmp_path / "idx.h5"
    res = invoke("index", tmp_path / "p", "--model", env["bundle"], "--output", index)
    assert res.exit_code == 3
    err = res.stderr.splitlines()
    assert len(err) == 2 and err[0].startswith(f"failed {bad}: ")
    assert err[1] == "1 of 3 images could not be read"
    assert res.stdout.splitlines()[0] == (
        f"indexed 2 images in {index}: 3 new, 0 changed, 0 unchanged, 0 removed, 1 failed")
    assert ImageIndex.load(index).paths == [str(p) for p in good]
    # the bad file is tried again next time (it is not in the index)
    res = invoke("index", tmp_path / "p", "--model", env["bundle"], "--output", index)
    assert res.exit_code == 3
    assert res.stdout.splitlines()[0].endswith(": 1 new, 0 changed, 2 unchanged, 0 removed, 1 failed")


# -- errors ----------------------------------------------------------------------------------
def test_empty_index_error(env, tmp_path):
    bad = tmp_path / "only" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG junk")
    index = tmp_path / "empty.h5"
    res = invoke("index", bad.parent, "--model", env["bundle"], "--output", index)
    assert res.exit_code == 3 and index.is_file()
    res = invoke("search", index, "dog")
    assert (res.exit_code, res.stderr) == (
        1, f"Error: {index} holds no images; add some with `devise index PHOTOS --model M --output {index}`\n")


def test_model_mismatch_errors(env, tmp_path):
    from models.bundle import model_checksum

    built, other = model_checksum(env["bundle"]).split(":")[1][:12], model_checksum(env["other"]).split(":")[1][:12]
    expected = (f"Error: {env['index']} was built with another model ({env['bundle']}, {built}), not {env['other']} "
                f"({other}); search it with that model or re-index with --rebuild\n")
    res = invoke("search", env["index"], "dog", "--model", env["other"])
    assert (res.exit_code, res.stderr) == (1, expected)
    res = invoke("search", env["index"], "dog", env={"DEVISE_MODEL": str(env["other"])})
    assert (res.exit_code, res.stderr) == (1, expected)
    res = invoke("index", env["photos"], "--model", env["other"], "--output", env["index"])
    assert (res.exit_code, res.stderr) == (1, expected)


def test_query_errors(env, tmp_path):
    res = invoke("search", env["index"], "tigr")
    assert (res.exit_code, res.stderr) == (
        1, "Error: 'tigr' has no vector in tiny.kv; did you mean: tiger? (a synset like dog.n.01 works too)\n")
    res = invoke("search", env["index"], "zzqx")
    assert res.stderr == "Error: 'zzqx' has no vector in tiny.kv; try another word (a synset like dog.n.01 works too)\n"
    res = invoke("search", env["index"], tmp_path / "nope.jpg")
    assert (res.exit_code, res.stderr) == (1, f"Error: {tmp_path / 'nope.jpg'}: no such image file\n")
    res = invoke("search", env["index"], "dog", "--vectors", tmp_path / "v.kv")
    assert res.stderr == f"Error: vectors file {tmp_path / 'v.kv'} does not exist\n"
    from gensim.models import KeyedVectors

    small = KeyedVectors(8)
    small.add_vectors(["dog", "cat"], np.eye(2, 8, dtype=np.float32))
    small.save(str(tmp_path / "v8.kv"))
    res = invoke("search", env["index"], "dog", "--vectors", tmp_path / "v8.kv")
    assert res.stderr == (f"Error: {tmp_path / 'v8.kv'} has 8-d vectors but {env['index']} holds 16-d embeddings; "
                          f"pass the vectors the model was trained with\n")
    broken = tmp_path / "broken.png"
    broken.write_text("junk")
    res = invoke("search", env["index"], broken)
    assert res.exit_code == 1 and res.stderr.startswith(f"Error: {broken}: ") and len(res.stderr.splitlines()) == 1


def test_index_file_errors(env, tmp_path):
    missing = tmp_path / "none.h5"
    res = invoke("search", missing, "dog")
    assert (res.exit_code, res.stderr) == (
        1, f"Error: {missing}: no such index; build one with `devise index PHOTOS --model M --output {missing}`\n")
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    res = invoke("search", corrupt, "dog")
    assert (res.exit_code, res.stderr) == (
        1, f"Error: {corrupt} is corrupt or not an image index (OSError); rebuild it with "
           f"`devise index PHOTOS --model M --output {corrupt} --rebuild`\n")
    vocab = env["bundle"] / "vocab.h5"
    res = invoke("search", vocab, "dog")
    assert res.stderr == (f"Error: {vocab} is not a devise image index; build one with "
                          f"`devise index PHOTOS --model M --output INDEX`\n")
    res = invoke("index", env["photos"], "--model", env["bundle"], "--output", vocab, "--rebuild")
    assert (res.exit_code, res.stderr) == (
        1, f"Error: {vocab} exists and is not a devise image index; refusing to replace it, choose another --output\n")
    (tmp_path / "empty").mkdir()
    res = invoke("index", tmp_path / "empty", "--model", env["bundle"], "--output", tmp_path / "x.h5")
    assert (res.exit_code, res.stderr) == (1, f"Error: no image files found in {tmp_path / 'empty'}\n")
    assert not (tmp_path / "x.h5").exists()
    res = invoke("index", "--model", env["bundle"], "--output", tmp_path / "x.h5")
    assert res.exit_code == 2 and res.stderr.endswith("Error: give the PHOTOS to index (files, folders or globs)\n")


def test_help_has_examples():
    for cmd in ("index", "search", "index merge"):
        res = invoke(*cmd.split(), "--help")
        assert res.exit_code == 0 and "Examples:" in res.stdout and f"devise {cmd} " in res.stdout
    assert invoke("index", "merge", "--help").stdout.startswith("Usage: main index merge [OPTIONS] OUT PARTS...")


def test_interrupted_indexing_keeps_finished_chunks(env, tmp_path, monkeypatch):
    from models.index.store import ImageIndex

    bundle = env["loaded"](env["bundle"])
    real_run, calls = type(bundle).run_batches, []

    def stop_in_third_batch(self, paths, *args, **kwargs):
        calls.append(len(paths))  # one pipeline for the whole run: called once
        for i, piece in enumerate(real_run(self, paths, *args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield piece

    monkeypatch.setattr(type(bundle), "run_batches", stop_in_third_batch)
    index = tmp_path / "idx.h5"
    res = invoke("index", env["photos"], "--model", env["bundle"], "--output", index, "--batch-size", 3,
                 "--commit-every", 4)
    assert (res.exit_code, res.stderr) == (1, "Error: interrupted; files already finished were kept\n")
    assert calls == [10]
    assert ImageIndex.load(index).paths == [str(p) for p in env["imgs"][:6]]  # the committed chunk and the rest
    assert not (tmp_path / ".idx.h5.journal").exists() and not (tmp_path / ".idx.h5.lock").exists()


def test_image_query_needs_a_model_it_can_find(env, tmp_path):
    from models.index.store import ImageIndex

    idx = ImageIndex.load(env["index"])
    idx.attrs["model_path"] = str(tmp_path / "moved")
    moved = idx.save(tmp_path / "moved.h5")
    res = invoke("search", moved, env["imgs"][0])
    assert (res.exit_code, res.stderr) == (
        1, f"Error: {moved} was built with model {tmp_path / 'moved'}, which cannot be found; "
           f"pass --model to embed the query image\n")
    out = json.loads(invoke("search", moved, env["imgs"][0], "--model", env["bundle"], "--json", "-k", 1).stdout)
    assert out["results"][0]["path"] == str(env["imgs"][0])


def test_approx_index_is_kept_beside_the_index_and_updated_not_rebuilt(env, tmp_path):
    import faiss

    photos = tmp_path / "photos"
    shutil.copytree(env["photos"], photos)
    index = tmp_path / "idx.h5"
    assert invoke("index", photos, "--model", env["bundle"], "--output", index).exit_code == 0

    def search(*extra):
        res = invoke("search", index, "tiger", "--top", 20, "--json", *extra)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["results"], res.stderr

    exact, _ = search()
    approx, err = search("--approx")
    assert err.startswith("building the approximate index of 10 images (once; kept beside the index and updated by "
                          "`devise index`) ...\n")
    assert (tmp_path / "idx.h5.faiss").is_file() and (tmp_path / "idx.h5.faiss.json").is_file()
    assert [r["path"] for r in approx] == [r["path"] for r in exact]
    np.testing.assert_allclose([r["score"] for r in approx], [r["score"] for r in exact], atol=1e-5)
    assert "building" not in search("--approx")[1]  # kept: not built again

    added = write_png(photos / "new.png", seed=7)
    (photos / "noise3.png").unlink()
    assert invoke("index", photos, "--model", env["bundle"], "--output", index).exit_code == 0
    assert faiss.read_index(str(tmp_path / "idx.h5.faiss")).ntotal == 10
    exact, _ = search()
    approx, err = search("--approx")
    assert "building" not in err  # updated by `devise index`, not rebuilt
    assert str(added) in [r["path"] for r in approx]
    assert [r["path"] for r in approx] == [r["path"] for r in exact]
    assert invoke("index", photos, "--model", env["bundle"], "--output", index, "--rebuild").exit_code == 0
    assert not (tmp_path / "idx.h5.faiss").exists()  # made for the replaced rows


# -- shards, merge, lock ---------------------------------------------------------------------
def test_two_shards_merged_equal_one_process(env, tmp_path):
    from models.data.shards import shard_of
    from models.index.store import ImageIndex

    # batch size 1 on both sides: the same computation per image, so the embeddings must be bit for bit equal
    # (with other batches the forward pass itself rounds differently, ~1e-7, sharded or not)
    one, parts = tmp_path / "one.h5", [tmp_path / "part0.h5", tmp_path / "part1.h5"]
    assert invoke("index", env["photos"], "--model", env["bundle"], "--output", one, "--batch-size", 1).exit_code == 0
    for i, part in enumerate(parts):
        res = invoke("index", env["photos"], "--model", env["bundle"], "--output", part, "--shard", f"{i}/2",
                     "--batch-size", 1, "--commit-every", 2)
        assert res.exit_code == 0, res.output
        mine = [p for p in env["imgs"] if shard_of(p, 2) == i]
        assert res.stdout.splitlines()[0] == (f"indexed {len(mine)} images of shard {i}/2 in {part}: {len(mine)} new, "
                                              f"0 changed, 0 unchanged, 0 removed, 0 failed")
        assert ImageIndex.load(part).paths == [str(p) for p in mine]
    assert len(ImageIndex.load(parts[0])) + len(ImageIndex.load(parts[1])) == 10  # (how they split: tmp_path's hash)
    merged = tmp_path / "merged.h5"
    res = invoke("index", "merge", merged, *parts)
    assert (res.exit_code, res.stdout) == (0, f"merged 2 parts into {merged}: 10 images\n")
    a, b = ImageIndex.load(one), ImageIndex.load(merged)
    assert b.paths == a.paths == [str(p) for p in env["imgs"]]
    np.testing.assert_array_equal(b.sizes, a.sizes)
    np.testing.assert_array_equal(b.mtimes, a.mtimes)
    np.testing.assert_array_equal(b.embeddings, a.embeddings)
    assert b.attrs["model_checksum"] == a.attrs["model_checksum"] and "shard" not in b.attrs
    assert b.attrs["sources"] == [str(env["photos"])]
    out = json.loads(invoke("search", merged, "tiger", "--json", "-k", 3).stdout)
    assert [r["path"] for r in out["results"]] == [r["path"] for r in search_json(env, "tiger", "-k", 3)["results"]]


def test_merge_refuses_other_models_unfinished_and_existing_out(env, tmp_path):
    from models.bundle import model_checksum
    from models.index.store import ImageIndex
    from wordnet.base.files import exclusive_lock

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for part, bundle, shard in ((a, env["bundle"], "0/2"), (b, env["other"], "1/2")):
        assert invoke("index", env["photos"], "--model", bundle, "--output", part, "--shard", shard).exit_code == 0
    short = {k: model_checksum(env[k]).split(":")[1][:12] for k in ("bundle", "other")}
    res = invoke("index", "merge", tmp_path / "m.h5", a, b)
    assert (res.exit_code, res.stderr) == (1, (
        f"Error: {b} was made with another model ({env['other']}, {short['other']}) than {a} ({env['bundle']}, "
        f"{short['bundle']}); merge only parts indexed with the same --model\n"))
    assert not (tmp_path / "m.h5").exists()
    res = invoke("index", "merge", b, a)
    assert (res.exit_code, res.stderr) == (1, f"Error: {b} exists; name it among the PARTs to merge into it, "
                                              f"or choose another OUT\n")
    journal = tmp_path / ".a.h5.journal"
    journal.mkdir()
    res = invoke("index", "merge", tmp_path / "m.h5", a)
    assert res.stderr == (f"Error: {a} has an unfinished indexing run ({journal}); run its `devise index` command "
                          f"again to finish it, then merge\n")
    journal.rmdir()
    with exclusive_lock(tmp_path / ".a.h5.lock"):
        res = invoke("index", "merge", tmp_path / "m.h5", a)
    assert (res.exit_code, res.stderr) == (1, f"Error: index {a} is in use by another devise process (pid "
                                              f"{os.getpid()}); wait for it to finish, or stop it and try again\n")
    rows = len(ImageIndex.load(a))
    res = invoke("index", "merge", a, a)  # OUT among the parts: merged into itself
    assert (res.exit_code, res.stdout) == (0, f"merged 1 parts into {a}: {rows} images\n")
    res = invoke("index", "merge", tmp_path / "m.h5")
    assert res.exit_code == 2 and "Missing argument 'PARTS...'" in res.stderr


def test_second_writer_is_refused_naming_the_holder(env, tmp_path):
    from wordnet.base.files import exclusive_lock

    index = tmp_path / "idx.h5"
    with exclusive_lock(tmp_path / ".idx.h5.lock"):
        res = invoke("index", env["photos"], "--model", env["bundle"], "--output", index)
    assert (res.exit_code, res.stderr) == (1, f"Error: index {index} is in use by another devise process (pid "
                                              f"{os.getpid()}); wait for it to finish, or stop it and try again\n")
    assert not index.exists()


def test_shard_option_errors_and_predict_shard(env, tmp_path):
    from models.data.shards import shard_of

    res = invoke("index", env["photos"], "--model", env["bundle"], "--output", tmp_path / "x.h5", "--shard", "2/2")
    assert res.exit_code == 2 and res.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--shard' (env var: 'DEVISE_SHARD'): shard 2/2 is not I/N with 0 <= I < N "
        "(e.g. --shard 0/4 ... --shard 3/4)")
    res = invoke("predict", env["photos"], "--model", env["bundle"], "--shard", "half")
    assert res.exit_code == 2 and res.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--shard' (env var: 'DEVISE_SHARD'): shard 'half' is not I/N with 0 <= I < N "
        "(e.g. --shard 0/4 ... --shard 3/4)")
    seen = []
    for i in range(3):
        res = invoke("predict", env["photos"], "--model", env["bundle"], "--json", "--shard", f"{i}/3")
        assert res.exit_code == 0, res.output
        paths = [json.loads(line)["path"] for line in res.stdout.splitlines()]
        assert paths == [str(p) for p in env["imgs"] if shard_of(p, 3) == i]
        seen += paths
    assert sorted(seen) == [str(p) for p in env["imgs"]]


def test_text_search_and_merge_load_no_tensorflow(env, tmp_path):
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from devise_cli.cli import main\n"
            "for args in sys.argv[1:]:\n"
            "    main(json.loads(args), standalone_mode=False)\n"
            "print(json.dumps([m for m in ('tensorflow', 'keras') if m in sys.modules]))")
    commands = [["search", str(env["index"]), "tiger", "--json"], ["search", str(env["index"]), "dog.n.01", "--approx"],
                ["index", "merge", str(tmp_path / "m.h5"), str(env["index"])]]
    res = subprocess.run([sys.executable, "-c", code, *map(json.dumps, commands)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "[]"
    assert json.loads(res.stdout.splitlines()[0])["results"][0]["path"] in map(str, env["imgs"])


def test_a_part_rerun_keeps_its_shard_and_search_warns_of_an_unfinished_run(env, tmp_path):
    from models.data.shards import shard_of

    part = tmp_path / "part.h5"
    # the fullest of 3 shards (which images fall where depends on tmp_path: a shard can be empty, and search
    # refuses an empty index)
    counts = [sum(shard_of(p, 3) == i for p in env["imgs"]) for i in range(3)]
    i, n = max(enumerate(counts), key=lambda c: c[1])
    res = invoke("index", env["photos"], "--model", env["bundle"], "--output", part, "--shard", f"{i}/3")
    assert res.exit_code == 0, res.output
    res = invoke("index", "--model", env["bundle"], "--output", part)
    assert res.stdout.splitlines()[0] == (f"indexed {n} images of shard {i}/3 in {part}: 0 new, 0 changed, "
                                          f"{n} unchanged, 0 removed, 0 failed")
    (tmp_path / ".part.h5.journal").mkdir()  # what a killed run leaves
    res = invoke("search", part, "tiger", "--json")
    assert res.exit_code == 0 and res.stderr == (f"warning: {part} has an unfinished `devise index` run; the images it "
                                                 f"committed are searchable once the same command runs again\n")
