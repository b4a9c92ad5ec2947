"""Merkle trees as OpenZeppelin MerkleProof (sorted-pair keccak256) verifies them."""

from __future__ import annotations

import pytest
from sha3 import keccak_256

from trace_sdk.protocol.merkle import MerkleTree, hash_pair, verify_proof


def _leaf(i: int) -> bytes:
    return keccak_256(f"leaf {i}".encode()).digest()


def _pair(a: bytes, b: bytes) -> bytes:
    lo, hi = sorted([a, b])
    return keccak_256(lo + hi).digest()


def test_hash_pair_is_commutative_and_sorted() -> None:
    a, b = _leaf(0), _leaf(1)
    assert hash_pair(a, b) == hash_pair(b, a) == _pair(a, b)
    assert hash_pair(a, a) == keccak_256(a + a).digest()


def test_single_leaf_is_its_own_root_with_empty_proof() -> None:
    tree = MerkleTree([_leaf(0)])
    assert tree.root == _leaf(0)
    assert tree.proof(0) == []
    assert verify_proof(_leaf(0), [], tree.root)


def test_two_and_three_leaves_by_hand() -> None:
    l0, l1, l2 = _leaf(0), _leaf(1), _leaf(2)
    assert MerkleTree([l0, l1]).root == _pair(l0, l1)
    tree = MerkleTree([l0, l1, l2])
    assert tree.root == _pair(_pair(l0, l1), l2)  # l2 promoted unchanged to the second level
    assert tree.proof(0) == [l1, l2]
    assert tree.proof(2) == [_pair(l0, l1)]


def test_five_leaves_promote_twice() -> None:
    leaves = [_leaf(i) for i in range(5)]
    a, b = _pair(leaves[0], leaves[1]), _pair(leaves[2], leaves[3])
    tree = MerkleTree(leaves)
    assert tree.root == _pair(_pair(a, b), leaves[4])
    assert tree.proof(4) == [_pair(a, b)]
    assert tree.proof(3) == [leaves[2], a, leaves[4]]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33])
def test_every_proof_verifies_and_proofs_match_proof(n: int) -> None:
    leaves = [_leaf(i) for i in range(n)]
    tree = MerkleTree(leaves)
    proofs = tree.proofs()
    assert proofs == [tree.proof(i) for i in range(n)]
    assert len(tree) == n and tree.leaves == leaves
    for leaf, proof in zip(leaves, proofs, strict=True):
        assert verify_proof(leaf, proof, tree.root)


def test_wrong_leaf_proof_or_root_fails() -> None:
    leaves = [_leaf(i) for i in range(6)]
    tree = MerkleTree(leaves)
    proof = tree.proof(2)
    assert not verify_proof(leaves[3], proof, tree.root)
    assert not verify_proof(leaves[2], proof[:-1], tree.root)
    assert not verify_proof(leaves[2], proof, _leaf(99))
    assert not verify_proof(leaves[2], [*proof[:-1], b"\x00" * 31], tree.root)


def test_leaves_keep_submission_order() -> None:
    leaves = [_leaf(i) for i in range(4)]
    assert MerkleTree(leaves).root != MerkleTree([leaves[0], leaves[2], leaves[1], leaves[3]]).root


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree([])
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree([b"\x00" * 31])
    with pytest.raises(IndexError):
        MerkleTree([_leaf(0)]).proof(1)
    with pytest.raises(IndexError):
        MerkleTree([_leaf(0)]).proof(-1)
