"""The offline WordNet: built from Debian's files into the data home, or a clear error."""
from __future__ import annotations

import functools
import gzip

import pytest

from wordnet import reader as corpus
from wordnet.base.errors import WordNetMissingError

DEBIAN = corpus.DEBIAN_WORDNET_DIR


@pytest.fixture(scope="module")
def wn():
    return corpus.load_wordnet()


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """A private load_wordnet cache, data home and NLTK path; the session's cache is kept."""
    import nltk

    monkeypatch.setattr(corpus, "load_wordnet", functools.lru_cache(maxsize=1)(corpus.load_wordnet.__wrapped__))
    monkeypatch.setattr(nltk.data, "path", [])  # no NLTK-installed WordNet either
    monkeypatch.setenv("DEVISE_HOME", str(tmp_path / "home"))
    return corpus.load_wordnet


def test_loaded_reader_is_wordnet_30_with_lexnames_and_sense_index(wn):
    dog = wn.synset("dog.n.01")
    assert wn.get_version() == "3.0"
    assert dog.lexname() == "noun.animal"  # needs the lexnames file written from the man page
    assert wn.lemma_from_key("dog%1:05:00::") == dog.lemmas()[0]  # needs index.sense
    assert dog.lemmas()[0].count() == 42  # needs cntlist.rev
    assert wn.synset_from_pos_and_offset("n", 2084071) == dog
    assert wn.morphy("geese", "n") == "goose"  # needs noun.exc
    assert corpus.load_wordnet() is wn  # cached


def test_corpus_is_built_once_in_the_data_home_as_plain_copies(wn, devise_home):
    root = devise_home / "nltk_data" / "corpora" / "wordnet"
    for name in corpus.REQUIRED_FILES + ("lexnames",):
        path = root / name
        assert path.is_file() and not path.is_symlink(), name
    assert (root / "data.noun").stat().st_size == (DEBIAN / "data.noun").stat().st_size
    assert [p.name for p in root.parent.iterdir()] == ["wordnet"]  # no temp folders left


def test_lexnames_file_matches_wordnet_30(devise_home, wn):
    lines = (devise_home / "nltk_data/corpora/wordnet/lexnames").read_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"


def test_parse_lexnames_reads_the_man_page_table(tmp_path):
    page = tmp_path / "lexnames.5WN.gz"
    rows = "".join(f"{i:02d}\t{name}  \tsome description\n" for i, name in enumerate(corpus.LEXNAMES_30))
    with gzip.open(page, "wt") as fh:
        fh.write(".TS\ncenter ;\nl l l.\n\\fBFile Number\\fP\t\\fBName\\fP\t\\fBContents\\fP\n_\n" + rows + ".TE\n")
    parsed = corpus.parse_lexnames(page)
    assert [name for _, name, _ in parsed] == corpus.LEXNAMES_30
    assert parsed[18] == (18, "noun.person", 1)
    assert parsed[2] == (2, "adv.all", 4)
    # without the man page (Docker images often drop /usr/share/man): the built-in list
    assert corpus.parse_lexnames(tmp_path / "absent.gz") == parsed


def test_real_man_page_agrees_with_builtin_list():
    if not corpus.LEXNAMES_MAN_PAGE.is_file():
        pytest.skip("lexnames(5WN) man page not installed")
    assert [name for _, name, _ in corpus.parse_lexnames()] == corpus.LEXNAMES_30


def test_build_corpus_keeps_a_finished_corpus_and_leaves_no_temp(tmp_path):
    target = tmp_path / "corpora" / "wordnet"
    corpus.build_corpus(DEBIAN, target)
    stamp = (target / "lexnames").stat().st_mtime_ns
    corpus.build_corpus(DEBIAN, target)  # as if a second process raced the first
    assert (target / "lexnames").stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == ["wordnet"]


def test_incomplete_debian_dir_names_missing_files(tmp_path):
    src = tmp_path / "wn"
    src.mkdir()
    for name in corpus.REQUIRED_FILES:
        if name != "index.sense":
            (src / name).write_text("x")
    with pytest.raises(WordNetMissingError) as err:
        corpus.build_corpus(src, tmp_path / "out" / "wordnet")
    assert str(err.value) == (
        f"WordNet in {src} is incomplete (missing index.sense): run `apt-get install wordnet-base "
        "wordnet-sense-index` or `python -m nltk.downloader wordnet`"
    )
    assert not (tmp_path / "out" / "wordnet").exists()


def test_missing_wordnet_is_one_line_with_the_fix(fresh_loader, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("DEVISE_WORDNET_DIR", str(empty))
    with pytest.raises(WordNetMissingError) as err:
        fresh_loader()
    assert str(err.value) == (
        f"WordNet not found (no NLTK corpora/wordnet, no WordNet files in {empty}): run "
        "`apt-get install wordnet-base wordnet-sense-index` or `python -m nltk.downloader wordnet`"
    )
    assert not (tmp_path / "home" / "nltk_data" / "corpora" / "wordnet").exists()


def test_debian_dir_override_builds_from_a_copy(fresh_loader, monkeypatch, tmp_path):
    import shutil

    import nltk

    src = tmp_path / "debian"
    src.mkdir()
    for name in corpus.REQUIRED_FILES:
        shutil.copyfile(DEBIAN / name, src / name)
    monkeypatch.setenv("DEVISE_WORDNET_DIR", str(src))
    root = corpus.wordnet_root()  # what load_wordnet() reads, without parsing it again
    built = tmp_path / "home" / "nltk_data" / "corpora" / "wordnet"
    assert root.path == str(built)
    assert sorted(p.name for p in built.iterdir()) == sorted(corpus.REQUIRED_FILES + ("lexnames",))
    assert str(tmp_path / "home" / "nltk_data") in nltk.data.path  # NLTK only opens files there
