"""The photo test set: the Qt resource reader, debian/copyright credits, the shipped table, `devise data photos`."""
from __future__ import annotations

import csv
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main
from wordnet.base.errors import DatasetError
from wordnet.datasets.photos import (
    Photo,
    build_photo_dataset,
    credit_for,
    imagenet1k_relation,
    parse_copyright,
    read_photo_table,
    read_rcc,
    validate_photos,
)

NO_ENV = {"DEVISE_GCOMPRIS_DIR": None, "DEVISE_PHOTO_MAX_SIDE": None}
RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
COPYRIGHT = Path("/usr/share/doc/gcompris-qt-data/copyright")
needs_gcompris = pytest.mark.skipif(not (RCC_DIR / "categorization.rcc").is_file() or not COPYRIGHT.is_file(),
                                    reason="Debian's gcompris-qt-data is not installed")


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def qt_hash(text: str) -> int:
    h = 0
    for ch in text:
        h = (h << 4) + ord(ch)
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def write_rcc(files: dict[str, bytes], *, version: int = 3, zlib_files=(), zstd_files=()) -> bytes:
    """A Qt binary resource holding ``files`` ({"a/b.png": bytes}), laid out as Qt's rcc writes it:
    header, then the data, names and tree blocks; children of a folder are consecutive nodes."""
    tree: dict = {}
    for path, content in files.items():
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = (path, content)

    names, name_offsets = bytearray(), {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            names.extend(struct.pack(">HI", len(name), qt_hash(name)) + name.encode("utf-16-be"))
        return name_offsets[name]

    data = bytearray()
    order = [("", tree)]  # breadth first: node i's children are appended together
    nodes: list[bytes] = []
    i = 0
    while i < len(order):
        name, node = order[i]
        offset = name_offset(name) if i else 0
        if isinstance(node, dict):
            children = sorted(node.items(), key=lambda kv: qt_hash(kv[0]))
            record = struct.pack(">IHII", offset, 0x02, len(children), len(order))
            order.extend(children)
        else:
            path, content = node
            flags = 0
            if path in zlib_files:
                content, flags = struct.pack(">I", len(content)) + zlib.compress(content), 0x01
            elif path in zstd_files:
                flags = 0x04  # the reader must refuse it without zstandard; the bytes are not inspected
            record = struct.pack(">IHHHI", offset, flags, 0, 1, len(data))
            data.extend(struct.pack(">I", len(content)) + content)
        nodes.append(record + (b"\0" * 8 if version >= 2 else b""))
        i += 1
    header_size = 20 + (4 if version >= 3 else 0)
    data_offset = header_size
    names_offset = data_offset + len(data)
    tree_offset = names_offset + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + bytes(data) + bytes(names) + b"".join(nodes)


def photo_bytes(size=(40, 30), fmt="PNG", alpha=False, colour=(200, 30, 30)) -> bytes:
    """A small picture: a coloured rectangle, optionally on a transparent page."""
    w, h = size
    pixels = np.zeros((h, w, 4 if alpha else 3), np.uint8)
    pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4, :3] = colour
    if alpha:
        pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


# --- the Qt resource reader ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2, 3])
def test_read_rcc_returns_every_file_raw_or_zlib(version):
    files = {"gcompris/src/activities/zoo/resource/cat.webp": b"cat bytes" * 50,
             "gcompris/src/activities/zoo/resource/dog.webp": b"dog",
             "gcompris/src/activities/zoo/Zoo.qml": "Ünïcode qml ✓".encode(),
             "top.txt": b""}
    data = write_rcc(files, version=version, zlib_files={"gcompris/src/activities/zoo/resource/cat.webp"})
    assert read_rcc(data) == files


def test_read_rcc_says_what_is_wrong():
    with pytest.raises(DatasetError, match=r"^x.rcc: not a Qt resource file \(no 'qres' header\)$"):
        read_rcc(b"PK\x03\x04" + b"\0" * 40, "x.rcc")
    good = write_rcc({"a/b.png": b"0123456789"})
    with pytest.raises(DatasetError, match="^x.rcc: Qt resource version 9 is not supported"):
        read_rcc(good[:4] + struct.pack(">I", 9) + good[8:], "x.rcc")
    with pytest.raises(DatasetError, match="^x.rcc: corrupt Qt resource file"):
        read_rcc(good[:-10], "x.rcc")  # the tree cut short
    zipped = write_rcc({"a/b.png": b"0123456789" * 10}, zlib_files={"a/b.png"})
    stream = zlib.compress(b"0123456789" * 10)
    broken = zipped.replace(stream, stream[:2] + b"\xff" * (len(stream) - 2))  # same length, bad deflate
    with pytest.raises(DatasetError, match="^x.rcc: a/b.png: broken zlib data"):
        read_rcc(broken, "x.rcc")


def test_read_rcc_asks_for_zstandard_when_a_file_is_zstd(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails as if not installed
    data = write_rcc({"a/b.png": b"\x28\xb5\x2f\xfd zstd frame"}, zstd_files={"a/b.png"})
    with pytest.raises(DatasetError, match="^x.rcc: a/b.png is zstd-compressed; pip install zstandard to read it$"):
        read_rcc(data, "x.rcc")


@needs_gcompris
def test_read_rcc_reads_gcompris_photos():
    files = read_rcc((RCC_DIR / "explore_world_animals.rcc").read_bytes())
    koala = files["gcompris/src/activities/explore_world_animals/resource/animals/koala.webp"]
    with Image.open(io.BytesIO(koala)) as image:
        assert image.format == "WEBP" and min(image.size) > 200


# --- debian/copyright credits ----------------------------------------------------------------------

COPYRIGHT_TEXT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: gcompris-qt

Files: *
Copyright: 2014 First Dev <a@example.org>
           2015 Second Dev
License: GPL-3+

Files: src/activities/zoo/resource/*
Copyright: 2016 Folder Artist
License: GPL-3

Files: src/activities/zoo/resource/cat.jpg
       src/activities/zoo/resource/cow.png
Copyright: Cat Photographer
License: CC-BY-SA-3.0
Comment: https://commons.wikimedia.org/wiki/File:Cat.jpg

Files: src/activities/zoo/resource/cow.svg
Copyright: Someone Drawing
License: CC0-1.0

License: GPL-3+
 This program is free software; you can redistribute it ...
 .
 Files: not/a/stanza
"""


def test_parse_copyright_reads_each_files_stanza():
    credits = parse_copyright(COPYRIGHT_TEXT)
    assert [c.patterns for c in credits] == [
        ("*",), ("src/activities/zoo/resource/*",),
        ("src/activities/zoo/resource/cat.jpg", "src/activities/zoo/resource/cow.png"),
        ("src/activities/zoo/resource/cow.svg",)]
    assert credits[0].copyright == "2014 First Dev <a@example.org>; 2015 Second Dev"
    assert credits[2].licence == "CC-BY-SA-3.0"
    assert credits[2].comment == "https://commons.wikimedia.org/wiki/File:Cat.jpg"


def test_credit_for_takes_the_last_matching_stanza_under_the_original_name():
    credits = parse_copyright(COPYRIGHT_TEXT)
    credit, basis = credit_for("src/activities/zoo/resource/cat.webp", credits)  # shipped .webp, credited .jpg
    assert (credit.licence, credit.copyright, basis) == ("CC-BY-SA-3.0", "Cat Photographer", "file")
    credit, basis = credit_for("src/activities/zoo/resource/cow.webp", credits)
    assert (credit.licence, basis) == ("CC0-1.0", "file")  # a later stanza wins; it names cow.svg
    credit, basis = credit_for("src/activities/zoo/resource/deep/owl.webp", credits)
    assert (credit.licence, credit.copyright, basis) == ("GPL-3", "2016 Folder Artist", "folder")  # * spans /
    credit, basis = credit_for("src/activities/farm/pig.webp", credits)
    assert (credit.licence, basis) == ("GPL-3+", "package default")
    assert credit_for("src/x.webp", credits[1:]) == (None, "")


@needs_gcompris
def test_credit_for_reads_debians_gcompris_copyright():
    credits = parse_copyright(COPYRIGHT.read_text(encoding="utf-8"))
    credit, basis = credit_for("src/activities/explore_world_animals/resource/animals/koala.webp", credits)
    assert (credit.licence, credit.copyright, basis) == ("CC-BY-SA-3.0", "David Iliff", "file")
    assert "Koala_climbing_tree" in credit.comment


# --- the shipped table ----------------------------------------------------------------------------

def test_shipped_table_resolves_to_noun_synsets(wn):
    table = read_photo_table()
    assert len(table) >= 140
    validate_photos(wn, table)  # raises on an unknown synset, a non-noun or a wnid that is not the synset's
    for photo in table:
        assert wn.synset(photo.synset).pos() == "n"
    by_file = {p.file: p.synset for p in table}
    # senses that a name alone gets wrong, checked by looking at the photos
    assert by_file["explore_world_animals/resource/animals/panda.webp"] == "giant_panda.n.01"
    assert by_file["erase/resource/red_panda.webp"] == "lesser_panda.n.01"
    assert by_file["explore_world_animals/resource/animals/dragon.webp"] == "komodo_dragon.n.01"
    assert by_file["explore_farm_animals/resource/animals/pig.webp"] == "hog.n.03"
    assert by_file["categorization/resource/images/others/knife.webp"] == "cutlery.n.02"  # knife, fork, spoon
    assert by_file["categorization/resource/images/renewable/windmill6.webp"] == "wind_turbine.n.01"
    assert by_file["chelsea"] == "domestic_cat.n.01"


@pytest.mark.parametrize("content, message", [
    ("source,file,synset\n", "missing column"),
    ("source,file,synset,wnid\ngcompris,a.webp,,n1\n", ":2: source, file, synset and wnid are required"),
    ("source,file,synset,wnid\nflickr,a.jpg,dog.n.01,n02084071\n", ":2: unknown source 'flickr'"),
    ("source,file,synset,wnid,credit_check\ngcompris,a/b.webp,dog.n.01,n02084071,maybe\n",
     ":2: credit_check must be empty, matches or mismatch"),
    ("source,file,synset,wnid\nskimage,coffee,coffee.n.01,n07929519\nskimage,coffee,espresso.n.01,n07920052\n",
     ":3: coffee is listed twice"),
])
def test_read_table_rejects_bad_rows(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_photo_table(path)


def test_validate_names_every_problem(wn):
    photos = [Photo("skimage", "a", "dog.n.01", "n02084071"), Photo("skimage", "b", "dog.n.01", "n00000001"),
              Photo("skimage", "c", "run.v.01", "v01926311"), Photo("skimage", "d", "nosuchthing.n.01", "n1")]
    with pytest.raises(DatasetError) as info:
        validate_photos(wn, photos)
    assert str(info.value) == ("photo table: b: dog.n.01 is n02084071, not n00000001; c: run.v.01 is not a noun; "
                               "d: no synset nosuchthing.n.01")


def test_imagenet1k_relation_looks_up_and_down_the_hierarchy(wn):
    in1k = {"n02106662", "n01855672"}  # German shepherd, goose
    assert imagenet1k_relation(wn, wn.synset("german_shepherd.n.01"), in1k) == "class"
    assert imagenet1k_relation(wn, wn.synset("dog.n.01"), in1k) == "hypernym of a class"
    assert imagenet1k_relation(wn, wn.synset("gosling.n.01"), in1k) == "hyponym of a class"
    assert imagenet1k_relation(wn, wn.synset("kitten.n.01"), in1k) == ""


# --- the build -------------------------------------------------------------------------------------

def fake_gcompris(root: Path) -> tuple[Path, Path, list[Photo]]:
    """An rcc folder with one activity (zoo.rcc) and its copyright file; a table over it."""
    prefix = "gcompris/src/activities/zoo/resource/"
    files = {prefix + "goldfish.webp": photo_bytes((900, 600), "WEBP"),  # large: shrunk to --max-side
             prefix + "kitten.webp": photo_bytes((40, 30), "PNG", alpha=True),  # transparent: kept as PNG
             prefix + "broken.webp": b"not an image"}
    rcc_dir = root / "rcc"
    rcc_dir.mkdir()
    (rcc_dir / "zoo.rcc").write_bytes(write_rcc(files, zlib_files={prefix + "kitten.webp"}))
    copyright_file = root / "copyright"
    copyright_file.write_text(COPYRIGHT_TEXT.replace("cat.jpg", "goldfish.jpg"))
    table = [Photo("gcompris", "zoo/resource/goldfish.webp", "goldfish.n.01", "n01443537", "matches", "a goldfish"),
             Photo("gcompris", "zoo/resource/kitten.webp", "kitten.n.01", "n02122948"),
             Photo("gcompris", "zoo/resource/broken.webp", "dog.n.01", "n02084071"),
             Photo("gcompris", "zoo/resource/absent.webp", "dog.n.01", "n02084071"),
             Photo("gcompris", "farm/resource/cow.webp", "cow.n.01", "n02403454"),
             Photo("skimage", "chelsea", "domestic_cat.n.01", "n02121808")]
    return rcc_dir, copyright_file, table


def test_build_writes_images_manifest_views_and_attribution(tmp_path, wn):
    rcc_dir, copyright_file, table = fake_gcompris(tmp_path)
    out = tmp_path / "out"
    result = build_photo_dataset(out, wn, table, sources=("gcompris",), gcompris=rcc_dir,
                                 copyright_file=copyright_file, max_side=300)
    assert [r["path"] for r in result.images] == ["images/n01443537/gcompris--zoo-goldfish.jpg",
                                                  "images/n02122948/gcompris--zoo-kitten.png"]
    assert [f for f, _why in result.missing] == ["zoo/resource/absent.webp", "farm/resource/cow.webp"]
    assert [f for f, _why in result.failures] == ["zoo/resource/broken.webp"]
    with Image.open(out / result.images[0]["path"]) as fish:
        assert (fish.format, fish.size) == ("JPEG", (300, 200))
    with Image.open(out / result.images[1]["path"]) as kitten:
        assert (kitten.format, kitten.mode, kitten.size) == ("PNG", "RGB", (40, 30))
        assert kitten.getpixel((0, 0)) == (255, 255, 255)  # the transparent page is white
        assert kitten.getpixel((20, 15)) == (200, 30, 30)  # original pixels kept
    manifest = rows(out / "manifest.csv")
    assert manifest[0] == {"path": "images/n01443537/gcompris--zoo-goldfish.jpg", "wnid": "n01443537",
                           "synset": "goldfish.n.01", "label": "goldfish", "imagenet1k": "class",
                           "source": "gcompris",
                           "file": "zoo/resource/goldfish.webp", "licence": "CC-BY-SA-3.0",
                           "author": "Cat Photographer", "credit_check": "matches", "note": "a goldfish"}
    assert (manifest[1]["licence"], manifest[1]["author"]) == ("GPL-3", "2016 Folder Artist")
    assert rows(out / "test.csv") == [{"img_name": r["path"], "class": r["wnid"]} for r in manifest]
    assert rows(out / "in1k.csv") == [{"img_name": manifest[0]["path"], "class": "n01443537"}]  # goldfish is 1K
    assert rows(out / "not_in1k.csv") == [{"img_name": manifest[1]["path"], "class": "n02122948"}]
    assert manifest[1]["imagenet1k"] == ""  # kitten.n.01 is a young mammal in WordNet, not a cat
    assert rows(out / "not_in1k_strict.csv") == rows(out / "not_in1k.csv")
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert ("| images/n01443537/gcompris--zoo-goldfish.jpg | CC-BY-SA-3.0 | Cat Photographer | "
            "https://commons.wikimedia.org/wiki/File:Cat.jpg | matches |") in attribution
    assert "| images/n02122948/gcompris--zoo-kitten.png | GPL-3 | 2016 Folder Artist | " in attribution

    # a rebuild with fewer photos leaves no stale image behind
    build_photo_dataset(out, wn, table[1:2], sources=("gcompris",), gcompris=rcc_dir, copyright_file=copyright_file)
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.*")) == [
        "images/n02122948/gcompris--zoo-kitten.png"]


def test_build_says_when_nothing_is_installed(tmp_path, wn, monkeypatch):
    from wordnet.datasets import photos

    monkeypatch.setattr(photos, "GCOMPRIS_DIRS", ())
    monkeypatch.delenv("DEVISE_GCOMPRIS_DIR", raising=False)
    with pytest.raises(DatasetError, match=r"^no photo could be extracted \(GCompris' data is not installed "
                                           r".*; apt-get install gcompris-qt-data\)$"):
        build_photo_dataset(tmp_path / "out", wn, read_photo_table(), sources=("gcompris",),
                            gcompris=tmp_path / "none")


@needs_gcompris
def test_every_gcompris_photo_of_the_table_is_in_the_package():
    table = [p for p in read_photo_table() if p.source == "gcompris"]
    by_activity: dict[str, list[str]] = {}
    for p in table:
        by_activity.setdefault(p.file.split("/")[0], []).append(p.file)
    for activity, files in by_activity.items():
        packaged = read_rcc((RCC_DIR / f"{activity}.rcc").read_bytes(), activity)
        assert [f for f in files if "gcompris/src/activities/" + f not in packaged] == []


@needs_gcompris
def test_cli_builds_from_the_installed_package(tmp_path):
    pytest.importorskip("skimage")
    table = tmp_path / "table.csv"
    chosen = {"erase/resource/kitten.webp", "explore_world_animals/resource/animals/koala.webp",
              "categorization/resource/images/others/erasers.webp", "coffee"}
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "file", "synset", "wnid", "credit_check", "note"])
        writer.writerows([(p.source, p.file, p.synset, p.wnid, p.credit_check, p.note)
                          for p in read_photo_table() if p.file in chosen])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["data", "photos", str(out), "--table", str(table), "--max-side", "256"],
                                env=NO_ENV)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-7].startswith("extracted 4 photos of 4 synsets in ")
    assert lines[-6:-4] == ["  gcompris     3 photos, 3 synsets", "  skimage      1 photos, 1 synsets"]
    assert lines[-4] == ("ImageNet-1K classes: 2 photos of 2 synsets; "  # koala, rubber eraser
                         "not in ImageNet-1K: 2 photos of 2 synsets, of which 1 photos of 1 synsets "
                         "neither above nor below a 1K class")  # coffee.n.01 is above espresso
    assert lines[-3].startswith("licences: ")
    assert lines[-2] == ("GCompris credits: 2 name this very photo, 0 name another photo (licence unverified), "
                         "1 name no source to compare")
    assert lines[-1] == f"wrote {out}"
    manifest = {r["file"]: r for r in rows(out / "manifest.csv")}
    assert manifest["explore_world_animals/resource/animals/koala.webp"]["licence"] == "CC-BY-SA-3.0"
    assert manifest["erase/resource/kitten.webp"]["author"].startswith("GCompris contributors")
    assert manifest["coffee"]["licence"] == "CC0-1.0"
    for row in manifest.values():
        with Image.open(out / row["path"]) as image:
            assert max(image.size) <= 256
    assert {r["class"] for r in rows(out / "in1k.csv")} == {"n01882714", "n04116512"}
    assert rows(out / "not_in1k_strict.csv") == [{"img_name": manifest["erase/resource/kitten.webp"]["path"],
                                                  "class": "n02122948"}]


def test_cli_rejects_an_unknown_source(tmp_path):
    result = CliRunner().invoke(main, ["data", "photos", str(tmp_path / "out"), "--sources", "flickr"], env=NO_ENV)
    assert result.exit_code == 2
    assert "unknown source(s) flickr; choose from gcompris, skimage" in result.output
