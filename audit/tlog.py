"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs.

Pure functions in the manner of Go's `golang.org/x/mod/sumdb/tlog`: no storage, no
Django. A tree of `size` leaves is addressed by *complete, aligned subtrees*: the
subtree at (level L, index k) covers leaves [k * 2**L, (k + 1) * 2**L). Level 0 is
the leaf hashes themselves. Callers keep those hashes wherever they like and hand a
`HashReader` to the functions that need them: a callable that takes a list of
(level, index) pairs and returns their hashes in the same order.

Hashing (RFC 9162 section 2.1.1):
    leaf hash = SHA-256(0x00 || data)
    node hash = SHA-256(0x01 || left || right)
    empty tree = SHA-256("")

Proofs follow RFC 9162 section 2.1.3 (inclusion: PATH) and 2.1.4 (consistency:
PROOF / SUBPROOF); verification follows the iterative algorithms of sections
2.1.3.2 and 2.1.4.2, so a proof produced here verifies with any RFC 6962/9162
implementation and vice versa.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index)
HashReader = Callable[[Sequence[Node]], Sequence[bytes]]


class ProofError(ValueError):
    """A proof does not verify (or is malformed)."""


# --- hashing --------------------------------------------------------------------


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k = the largest power of two with k < n (n >= 2), as in RFC 9162."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes held in memory."""
    if not leaf_hashes:
        return EMPTY_ROOT
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


# --- the right edge of a growing tree -----------------------------------------------


class Frontier:
    """The hashes of the maximal complete subtrees of a tree (a "compact range").

    For a tree of n leaves there is one subtree per set bit of n, largest first. Appending
    a leaf merges equal-sized subtrees on the right; each merge creates one new complete
    subtree, which `append` returns so the caller can store it for later proofs.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if len(hashes) != bin(size).count("1"):
            raise ValueError(
                f"a frontier of size {size} has {bin(size).count('1')} hashes, got {len(hashes)}"
            )
        self.size = size
        self.hashes = list(hashes)

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> Frontier:
        return cls(
            size, [bytes(packed[i : i + HASH_SIZE]) for i in range(0, len(packed), HASH_SIZE)]
        )

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def nodes(self) -> list[Node]:
        """(level, index) of each frontier hash, left to right."""
        out, start = [], 0
        for level in range(self.size.bit_length() - 1, -1, -1):
            if self.size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    def append(self, leaf_hash: bytes) -> list[tuple[Node, bytes]]:
        """Add leaf number `self.size`; return the new complete subtrees above level 0."""
        index, current, level, created = self.size, leaf_hash, 0, []
        while index >> level & 1:
            current = hash_node(self.hashes.pop(), current)
            level += 1
            created.append(((level, index >> level), current))
        self.hashes.append(current)
        self.size += 1
        return created

    def append_subtree(self, level: int, value: bytes) -> None:
        """Add a complete aligned subtree of 2**level leaves starting at leaf `self.size`.

        Rebuilds a root from a left-to-right *cover* of a tree (single leaves and whole
        subtrees, as an export carries them) exactly as if every leaf had been appended.
        """
        if level < 0 or self.size & ((1 << level) - 1):
            raise ValueError(
                f"a subtree of level {level} cannot start at leaf {self.size} (not aligned)"
            )
        current, bit = value, level
        while self.size >> bit & 1:
            current = hash_node(self.hashes.pop(), current)
            bit += 1
        self.hashes.append(current)
        self.size += 1 << level

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = hash_node(left, result)
        return result

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))


# --- subtree decomposition -----------------------------------------------------------


def subtree_nodes(lo: int, hi: int) -> list[Node]:
    """The maximal complete aligned subtrees covering leaves [lo, hi), left to right.

    Greedy from the left (the largest aligned block that starts at lo and fits), so it
    covers any range; for the ranges RFC 9162's recursion produces it is that
    recursion's decomposition. Exports use it to stand in for runs of events they omit.
    """
    if not 0 <= lo < hi:
        raise ValueError(f"bad range [{lo}, {hi})")
    out = []
    while lo < hi:
        # Largest aligned block starting at lo that fits in [lo, hi).
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while (1 << level) > hi - lo:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_node(left, result)
    return result


class _Plan:
    """Two-phase proof building: first collect the subtrees needed, read them in one
    batch, then assemble. Mirrors tlog's "indexes first, then hashes" design."""

    def __init__(self):
        self.ranges: list[tuple[int, int]] = []

    def need(self, lo: int, hi: int) -> None:
        self.ranges.append((lo, hi))

    def resolve(self, reader: HashReader) -> list[bytes]:
        per_range = [subtree_nodes(lo, hi) for lo, hi in self.ranges]
        wanted = sorted({node for nodes in per_range for node in nodes})
        got = dict(zip(wanted, reader(wanted), strict=True))
        return [_fold([got[node] for node in nodes]) for nodes in per_range]


def tree_hash(size: int, reader: HashReader) -> bytes:
    """MTH of the first `size` leaves, from stored complete subtrees."""
    if size == 0:
        return EMPTY_ROOT
    plan = _Plan()
    plan.need(0, size)
    return plan.resolve(reader)[0]


# --- inclusion -------------------------------------------------------------------------


def _path(index: int, lo: int, hi: int, plan: _Plan) -> None:
    """RFC 9162 PATH(m, D[lo:hi]) with m = index - lo; appends ranges bottom-up."""
    n = hi - lo
    if n == 1:
        return
    k = _largest_power_of_two_below(n)
    if index - lo < k:
        _path(index, lo, lo + k, plan)
        plan.need(lo + k, hi)
    else:
        _path(index, lo + k, hi, plan)
        plan.need(lo, lo + k)


def prove_inclusion(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The audit path for leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    plan = _Plan()
    _path(index, 0, size, plan)
    return plan.resolve(reader) if plan.ranges else []


def inclusion_nodes(index: int, size: int) -> list[Node]:
    """The stored subtrees `prove_inclusion` will read (for batch prefetching)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    plan = _Plan()
    _path(index, 0, size, plan)
    return sorted({node for lo, hi in plan.ranges for node in subtree_nodes(lo, hi)})


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root a valid proof implies (raises on a malformed proof)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof hash of the wrong length")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hash_node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> None:
    if root_from_inclusion(leaf_hash, index, size, proof) != root_hash:
        raise ProofError(
            f"inclusion proof for leaf {index} does not match the root of tree size {size}"
        )


# --- consistency -----------------------------------------------------------------------


def _subproof(m: int, lo: int, hi: int, complete: bool, plan: _Plan) -> None:
    """RFC 9162 SUBPROOF(m, D[lo:hi], b)."""
    n = hi - lo
    if m == n:
        if not complete:
            plan.need(lo, hi)
        return
    k = _largest_power_of_two_below(n)
    if m <= k:
        _subproof(m, lo, lo + k, complete, plan)
        plan.need(lo + k, hi)
    else:
        _subproof(m - k, lo + k, hi, False, plan)
        plan.need(lo, lo + k)


def prove_consistency(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of `old_size` is a prefix of the tree of `new_size`."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    plan = _Plan()
    _subproof(old_size, 0, new_size, True, plan)
    return plan.resolve(reader)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raises ProofError when the proof does not verify."""
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"tree size went from {old_size} to {new_size}: a tree never shrinks")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("proof hash of the wrong length")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_node(c, fr)
            sr = hash_node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root of tree size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root of tree size {new_size}")


# --- in-memory storage (tests, offline tools) -----------------------------------------


class MemoryTree:
    """All complete subtree hashes of a tree held in memory; a HashReader for it."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()):
        self.levels: list[list[bytes]] = [[]]
        self.frontier = Frontier()
        for leaf in leaf_hashes:
            self.append(leaf)

    def append(self, leaf_hash: bytes) -> None:
        self.levels[0].append(leaf_hash)
        for (level, index), value in self.frontier.append(leaf_hash):
            if level == len(self.levels):
                self.levels.append([])
            assert index == len(self.levels[level])
            self.levels[level].append(value)

    @property
    def size(self) -> int:
        return self.frontier.size

    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        return [self.levels[level][index] for level, index in nodes]

    def root(self, size: int | None = None) -> bytes:
        return tree_hash(self.size if size is None else size, self.read)
