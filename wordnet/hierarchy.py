"""The WordNet hierarchy as DeViSE/ConSE use it: zero-shot hop splits and the
ground-truth sets of hierarchical precision@k.

Edges are WordNet's is-a links in both directions: hypernyms and hyponyms, including
instance hypernyms/hyponyms (an instance like ``Mississippi`` is as much a child of
``river`` as a kind of river is; for the ImageNet lists it changes nothing within 3 hops).

**Hop splits** (:func:`hop_set`). Frome et al. (2013) and Norouzi et al. (ConSE, 2014) test
zero-shot transfer on ImageNet-21K labels "within N tree hops" of the 1K training labels,
published as 2-hop = 1,549 and 3-hop = 7,860 labels (all = 20,842 = 21,841 - the 999 1K
labels that are in the 21K list). Their exact hierarchy is not published; here:

* the label itself is the first hop, so "N hops" = graph distance <= N - 1 (the direct
  hypernyms and hyponyms of the 1K give 1,548 of the 1,549, which only fits this reading);
* distance is measured in the hierarchy *induced on the universe*: a universe synset's
  parents are its nearest ancestors that are in the universe (synsets outside it, e.g.
  WordNet nodes without ImageNet images, are passed through without counting a hop) and its
  children are the universe synsets that have it as such a parent. The seen labels are
  nodes of that hierarchy too (ImageNet's teddy bear, n04399382, is not in the 21K list).

Measured on WordNet 3.0 with the shipped lists (seen = 1K, universe = 21K)::

    definition                                         2-hop    3-hop
    published (Frome 2013 / Norouzi 2014)              1,549    7,860
    this one (induced universe hierarchy)              1,572    7,458
    plain WordNet distance, paths through any synset   1,548    5,990
    plain WordNet distance, paths inside the universe  1,548    5,910

This definition is the closest to both published sizes (+1.5 %, -5.1 %); plain WordNet
distance matches 2 hops almost exactly but misses a quarter of the 3-hop set, because
ImageNet-21K skips many intermediate WordNet synsets that the papers' tree did not count.

**Hierarchical precision ground truth** (:func:`ground_truth`). For a true label, a
candidate vocabulary and k: start from the true label and grow outward ring by ring (all
nodes at the next distance at once, up to parents and down to children, walking through
nodes that are not candidates) until the set holds at least k candidates; it may hold more
(the whole last ring is taken), as in Frome et al.'s hp@k.
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, Iterator

from wordnet.base.errors import DeviseError, UnknownLabelError
from wordnet.labels import synset_of_wnid, wnid_of


def parents(synset) -> list:
    """Hypernyms and instance hypernyms."""
    return synset.hypernyms() + synset.instance_hypernyms()


def children(synset) -> list:
    """Hyponyms and instance hyponyms."""
    return synset.hyponyms() + synset.instance_hyponyms()


def neighbours(synset) -> list:
    """Parents and children: one hop in the WordNet hierarchy."""
    return parents(synset) + children(synset)


def _synsets(wn, wnids: Iterable[str], what: str) -> dict[str, object]:
    found, unknown = {}, []
    for wnid in wnids:
        try:
            found[wnid] = synset_of_wnid(wn, wnid)
        except UnknownLabelError:
            unknown.append(wnid)
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise UnknownLabelError(f"{len(unknown)} {what} wnids are not in WordNet: {shown}")
    return found


def induced_parents(synset, universe: set, memo: dict) -> frozenset:
    """The nearest ancestors of ``synset`` that are in ``universe`` (others passed through)."""
    if synset in memo:
        return memo[synset]
    nearest: set = set()
    for parent in parents(synset):
        if parent in universe:
            nearest.add(parent)
        else:
            nearest |= induced_parents(parent, universe, memo)
    memo[synset] = result = frozenset(nearest)
    return result


def hop_set(wn, seen_wnids: Iterable[str], universe_wnids: Iterable[str], hops: int) -> list[str]:
    """Universe wnids within ``hops`` tree hops of the seen labels (sorted, seen excluded).

    See the module doc for the definition (label = first hop; induced universe hierarchy).
    ``hops`` = 1 gives nothing but the seen labels themselves, hence an empty list.
    """
    if hops < 1:
        raise DeviseError(f"hops must be at least 1 (the label itself is hop 1), got {hops}")
    seen = _synsets(wn, dict.fromkeys(seen_wnids), "seen")
    universe = _synsets(wn, dict.fromkeys(universe_wnids), "universe")
    if not seen:
        raise DeviseError("no seen labels given")
    nodes = set(universe.values()) | set(seen.values())
    memo: dict = {}
    kids: dict = {}
    for node in nodes:
        for parent in induced_parents(node, nodes, memo):
            kids.setdefault(parent, set()).add(node)

    def induced_neighbours(node):
        return induced_parents(node, nodes, memo) | kids.get(node, set())

    reached: set = set()
    for distance, ring in enumerate(rings(seen.values(), induced_neighbours)):
        if distance > hops - 1:
            break
        reached |= ring
    in_universe = {wnid_of(s) for s in reached} & set(universe)
    return sorted(in_universe - set(seen))


def rings(starts: Iterable[Hashable], neighbours: Callable[[Hashable], Iterable[Hashable]]) -> Iterator[set]:
    """Breadth-first rings: the start nodes (distance 0), then every node at distance 1, 2, …"""
    ring = set(starts)
    reached = set(ring)
    while ring:
        yield ring
        nxt = set()
        for node in ring:
            for other in neighbours(node):
                if other not in reached:
                    reached.add(other)
                    nxt.add(other)
        ring = nxt


def ground_truth(true, candidates, k: int, neighbours: Callable) -> set:
    """The hp@k ground-truth set: candidates reached ring by ring from ``true`` until >= k.

    ``neighbours(node)`` gives a node's parents and children. Rings pass through nodes that
    are not candidates. If the whole connected hierarchy holds fewer than ``k`` candidates,
    all reachable candidates are returned.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    found: set = set()
    for ring in rings([true], neighbours):
        found |= {node for node in ring if node in candidates}
        if len(found) >= k:
            break
    return found


class HierarchicalGroundTruth:
    """hp@k ground truth over a candidate vocabulary, as row indices of ``candidate_wnids``.

    Rings are computed once per true label and reused for every image and every k (an
    evaluation asks for the same few labels thousands of times).
    """

    def __init__(self, wn, candidate_wnids: Iterable[str]):
        self.wn = wn
        self.wnids = list(candidate_wnids)
        synsets = _synsets(self.wn, dict.fromkeys(self.wnids), "candidate")
        self._index: dict = {}
        for i, wnid in enumerate(self.wnids):
            self._index.setdefault(synsets[wnid], i)
        # WordNet 3.0's nouns form one hierarchy under entity.n.01, so when k is at least the
        # vocabulary size the answer is every candidate, without walking all 82k synsets.
        self._all_nouns = all(s.pos() == "n" for s in synsets.values())
        self._rings: dict[str, list[frozenset]] = {}  # true wnid -> candidate indices per ring
        self._complete: set[str] = set()  # true wnids whose rings reach the whole hierarchy

    def _candidate_rings(self, true_wnid: str, k: int) -> list[frozenset]:
        cached = self._rings.get(true_wnid)
        if cached is not None and (true_wnid in self._complete or sum(map(len, cached)) >= k):
            return cached
        start = synset_of_wnid(self.wn, true_wnid)
        found, total = [], 0
        for ring in rings([start], neighbours):
            hits = frozenset(self._index[s] for s in ring if s in self._index)
            found.append(hits)
            total += len(hits)
            if total >= k:
                break
        else:
            self._complete.add(true_wnid)
        self._rings[true_wnid] = found
        return found

    def indices(self, true_wnid: str, k: int) -> set[int]:
        """Candidate row indices in the ground-truth set of ``true_wnid`` for hp@k."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if k >= len(self._index) and self._all_nouns and true_wnid.startswith("n"):
            synset_of_wnid(self.wn, true_wnid)  # still an error for an unknown label
            return set(self._index.values())
        result: set[int] = set()
        for hits in self._candidate_rings(true_wnid, k):
            result |= hits
            if len(result) >= k:
                break
        return result
