"""Hop splits and hierarchical-precision ground truth: a hand-made hierarchy, then WordNet."""
from __future__ import annotations

import pytest

from wordnet.base.errors import DeviseError, UnknownLabelError
from wordnet.hierarchy import HierarchicalGroundTruth, ground_truth, hop_set, neighbours, rings
from wordnet.labels import read_label_list, synset_of_wnid, wnid_of
from wordnet.reader import load_wordnet

# A hand-made hierarchy (child -> parents). "m" has two parents.
#            root
#          /      \
#         A        B
#       / | \     / \
#     a1  a2 \   b1  b2
#     |       \     /
#    a1x        m
PARENTS = {"A": ["root"], "B": ["root"], "a1": ["A"], "a2": ["A"], "b1": ["B"], "b2": ["B"],
           "a1x": ["a1"], "m": ["A", "b2"]}
CHILDREN: dict = {}
for child, ps in PARENTS.items():
    for p in ps:
        CHILDREN.setdefault(p, []).append(child)


def toy_neighbours(node):
    return PARENTS.get(node, []) + CHILDREN.get(node, [])


CANDIDATES = {"a2", "b1", "b2", "a1x", "m"}  # root, A, B, a1 are not in the vocabulary

DOG, CANINE, WOLF, CARNIVORE, FELINE = "n02084071", "n02083346", "n02114100", "n02075296", "n02120997"
PUPPY, DOMESTIC_ANIMAL, CAT = "n01322604", "n01317541", "n02121620"


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


def test_rings_grow_up_and_down_at_once():
    assert list(rings(["a1"], toy_neighbours)) == [
        {"a1"}, {"A", "a1x"}, {"root", "a2", "m"}, {"B", "b2"}, {"b1"}]


@pytest.mark.parametrize("true, k, expected", [
    ("a1", 1, {"a1x"}),                          # ring 1 = {A, a1x}: one candidate
    ("a1", 2, {"a1x", "a2", "m"}),               # ring 2 = {root, a2, m}: whole ring taken -> 3 >= 2
    ("a1", 3, {"a1x", "a2", "m"}),
    ("a1", 4, {"a1x", "a2", "m", "b2"}),         # ring 3 = {B, b2}
    ("a1", 5, {"a1x", "a2", "m", "b2", "b1"}),   # ring 4 = {b1}
    ("a1", 9, {"a1x", "a2", "m", "b2", "b1"}),   # fewer than k in the whole hierarchy: all of them
    ("b1", 1, {"b1"}),                           # the true label itself is a candidate
    ("b1", 2, {"b1", "b2"}),                     # ring 1 = {B} has none; ring 2 = {root, b2}
    ("b1", 3, {"b1", "b2", "m"}),                # ring 3 = {A, m} (m through b2), A not a candidate
    ("root", 1, {"a2", "m", "b1", "b2"}),        # ring 1 = {A, B}: none; ring 2 = {a1, a2, m, b1, b2}
])
def test_ground_truth_on_hand_made_hierarchy(true, k, expected):
    assert ground_truth(true, CANDIDATES, k, toy_neighbours) == expected


def test_ground_truth_rejects_k_below_one():
    with pytest.raises(ValueError):
        ground_truth("a1", CANDIDATES, 0, toy_neighbours)


def test_hierarchical_ground_truth_on_wordnet(wn):
    candidates = [CAT, DOG, WOLF, CANINE, FELINE, CARNIVORE, PUPPY]
    gt = HierarchicalGroundTruth(wn, candidates)
    idx = {w: i for i, w in enumerate(candidates)}
    assert gt.indices(DOG, 1) == {idx[DOG]}
    # dog's ring 1: its parents canine + domestic animal and its children (puppy, ...)
    assert gt.indices(DOG, 2) == {idx[DOG], idx[CANINE], idx[PUPPY]}
    assert gt.indices(DOG, 3) == {idx[DOG], idx[CANINE], idx[PUPPY]}
    # ring 2: canine's parent carnivore and its other children (wolf, ...)
    assert gt.indices(DOG, 4) == {idx[DOG], idx[CANINE], idx[PUPPY], idx[CARNIVORE], idx[WOLF]}
    # ring 3: feline (a child of carnivore) and cat, reached through domestic animal -> domestic cat
    assert gt.indices(DOG, 6) == set(range(7))
    assert gt.indices(DOG, 50) == set(range(7))  # k >= vocabulary: all (nouns share one root)
    with pytest.raises(UnknownLabelError):
        gt.indices("n99999999", 50)
    assert gt.indices(DOG, 2) == {idx[DOG], idx[CANINE], idx[PUPPY]}  # cached rings give the same answer
    # a true label outside the vocabulary: ring 1 of domestic animal holds dog (its child)
    assert gt.indices(DOMESTIC_ANIMAL, 1) == {idx[DOG]}


def test_hierarchical_ground_truth_matches_generic_version(wn):
    candidates = read_label_list("imagenet1k")[::10]
    gt = HierarchicalGroundTruth(wn, candidates)
    cand_synsets = {synset_of_wnid(wn, w) for w in candidates}
    for true in candidates[:5] + [DOG]:
        for k in (1, 5, 20):
            generic = ground_truth(synset_of_wnid(wn, true), cand_synsets, k, neighbours)
            got = gt.indices(true, k)
            assert {candidates[i] for i in got} == {wnid_of(s) for s in generic}
            assert len(got) >= k


def test_hierarchical_ground_truth_unknown_wnid(wn):
    with pytest.raises(UnknownLabelError, match="1 candidate wnids are not in WordNet: n99999999"):
        HierarchicalGroundTruth(wn, [DOG, "n99999999"])


def test_hop_set_passes_through_synsets_outside_the_universe(wn):
    # dog's nearest ancestor in this universe is carnivore (canine, domestic animal, ... are not in it);
    # wolf (under canine) and feline hang from carnivore as well.
    universe = [CARNIVORE, WOLF, FELINE, CAT, DOG]
    assert hop_set(wn, [DOG], universe, 1) == []
    assert hop_set(wn, [DOG], universe, 2) == [CARNIVORE]
    assert hop_set(wn, [DOG], universe, 3) == sorted([CARNIVORE, WOLF, FELINE])
    assert hop_set(wn, [DOG], universe, 4) == sorted([CARNIVORE, WOLF, FELINE, CAT])
    # with canine in the universe, it is the parent and carnivore moves one hop out
    assert hop_set(wn, [DOG], universe + [CANINE], 2) == [CANINE]
    assert hop_set(wn, [DOG], universe + [CANINE], 3) == sorted([CANINE, CARNIVORE, WOLF])


def test_hop_set_errors(wn):
    with pytest.raises(DeviseError, match="hops must be at least 1"):
        hop_set(wn, [DOG], [CAT], 0)
    with pytest.raises(UnknownLabelError, match="1 universe wnids are not in WordNet: n99999999"):
        hop_set(wn, [DOG], [CAT, "n99999999"], 2)


def test_imagenet_hop_split_sizes(wn):
    """The published sizes are 1,549 and 7,860; see wordnet.hierarchy for why these differ."""
    seen, universe = read_label_list("imagenet1k"), read_label_list("imagenet21k")
    two = hop_set(wn, seen, universe, 2)
    three = hop_set(wn, seen, universe, 3)
    assert (len(two), len(three)) == (1572, 7458)
    assert set(two) < set(three) and not set(three) & set(seen)
    assert set(three) < set(universe)
