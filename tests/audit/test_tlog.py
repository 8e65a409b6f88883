"""Merkle tree code against RFC 6962 test vectors and an independent reference."""

from __future__ import annotations

import hashlib

import pytest

from audit import tlog

# The classic leaves of the RFC 6962 / Certificate Transparency test suite.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


# --- an independent, literal transcription of RFC 9162 section 2.1 -------------------


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, entries[:k]) + [ref_mth(entries[k:])]
    return ref_path(m - k, entries[k:]) + [ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, entries[:k], b) + [ref_mth(entries[k:])]
    return ref_subproof(m - k, entries[k:], False) + [ref_mth(entries[:k])]


def data(n: int) -> list[bytes]:
    return [LEAVES[i] if i < len(LEAVES) else f"leaf {i}".encode() for i in range(n)]


def test_hashes_match_the_rfc6962_vectors():
    assert (
        tlog.hash_leaf(b"").hex()
        == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert tlog.root([]) == hashlib.sha256(b"").digest()
    for size, expected in ROOTS.items():
        leaf_hashes = [tlog.hash_leaf(d) for d in LEAVES[:size]]
        assert tlog.root(leaf_hashes).hex() == expected
        assert tlog.MemoryTree(leaf_hashes).root().hex() == expected
        assert ref_mth(LEAVES[:size]).hex() == expected


def test_inclusion_proofs_for_every_size_and_index_up_to_64():
    entries = data(64)
    tree = tlog.MemoryTree(tlog.hash_leaf(d) for d in entries)
    for size in range(1, 65):
        root = ref_mth(entries[:size])
        assert tree.root(size) == root
        for index in range(size):
            proof = tlog.prove_inclusion(index, size, tree.read)
            assert proof == ref_path(index, entries[:size])
            leaf = tlog.hash_leaf(entries[index])
            tlog.verify_inclusion(leaf, index, size, proof, root)
            assert set(tlog.inclusion_nodes(index, size)) <= {
                (lv, i) for lv in range(7) for i in range(64 >> lv)
            }
            # Altered proofs, leaves, indexes and sizes fail.
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
                with pytest.raises(tlog.ProofError):
                    tlog.verify_inclusion(leaf, index, size, bad, root)
            with pytest.raises(tlog.ProofError):
                tlog.verify_inclusion(tlog.hash_leaf(b"other"), index, size, proof, root)
            with pytest.raises(tlog.ProofError):
                tlog.verify_inclusion(leaf, index, size, proof + [root], root)
            if proof:
                with pytest.raises(tlog.ProofError):
                    tlog.verify_inclusion(leaf, index, size, proof[:-1], root)
            if size > 1:
                with pytest.raises(tlog.ProofError):
                    tlog.verify_inclusion(leaf, (index + 1) % size, size, proof, root)


def test_consistency_proofs_for_every_pair_of_sizes_up_to_64():
    entries = data(64)
    tree = tlog.MemoryTree(tlog.hash_leaf(d) for d in entries)
    roots = {n: ref_mth(entries[:n]) for n in range(65)}
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = tlog.prove_consistency(old, new, tree.read)
            expected = [] if old == new else ref_subproof(old, entries[:new], True)
            assert proof == expected
            tlog.verify_consistency(old, new, roots[old], roots[new], proof)
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
                with pytest.raises(tlog.ProofError):
                    tlog.verify_consistency(old, new, roots[old], roots[new], bad)
            if old < new:
                with pytest.raises(tlog.ProofError):
                    tlog.verify_consistency(
                        old,
                        new,
                        roots[old],
                        roots[new - 1] if new - 1 != old else b"\0" * 32,
                        proof,
                    )
                with pytest.raises(tlog.ProofError):
                    tlog.verify_consistency(old, new, b"\1" * 32, roots[new], proof)
                with pytest.raises(tlog.ProofError):
                    tlog.verify_consistency(old, new, roots[old], roots[new], proof[:-1])
    with pytest.raises(tlog.ProofError):
        tlog.verify_consistency(5, 4, roots[5], roots[4], [])


def test_frontier_emits_exactly_the_complete_subtrees():
    tree = tlog.MemoryTree()
    frontier = tlog.Frontier()
    for i in range(33):
        leaf = tlog.hash_leaf(b"%d" % i)
        tree.append(leaf)
        for (level, index), value in frontier.append(leaf):
            assert tree.levels[level][index] == value
        restored = tlog.Frontier.from_bytes(frontier.size, frontier.to_bytes())
        assert restored.root() == tree.root() == ref_mth([b"%d" % j for j in range(i + 1)])
