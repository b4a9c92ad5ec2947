"""Merkle trees that OpenZeppelin's `MerkleProof.verify` accepts (sorted-pair keccak256).

Leaves stay in submission order; each level pairs neighbours (0,1), (2,3)...; a level with an odd count
promotes its last node unchanged; a single leaf is its own root with an empty proof.
"""

from __future__ import annotations

from collections.abc import Sequence

from sha3 import keccak_256 as _keccak

__all__ = ["MerkleTree", "hash_pair", "verify_proof"]


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin `Hashes.commutativeKeccak256`: keccak256 of the two nodes, smaller first."""
    return _keccak(a + b if a < b else b + a).digest()


class MerkleTree:
    """A Merkle tree over 32-byte leaves; every level is kept so proofs cost O(log n) each."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        level = list(leaves)
        for i, leaf in enumerate(level):
            if not isinstance(leaf, bytes) or len(leaf) != 32:
                raise ValueError(f"leaf {i} must be 32 bytes")
        levels = [level]
        while len(level) > 1:
            nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])  # odd node promoted unchanged
            levels.append(nxt)
            level = nxt
        self._levels: list[list[bytes]] = levels

    @property
    def root(self) -> bytes:
        """The 32-byte root anchored on chain."""
        return self._levels[-1][0]

    @property
    def leaves(self) -> list[bytes]:
        """The leaves, in submission order."""
        return list(self._levels[0])

    def __len__(self) -> int:
        return len(self._levels[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root (levels where the node was promoted add none)."""
        if not 0 <= index < len(self._levels[0]):
            raise IndexError(f"leaf index {index} out of range 0..{len(self._levels[0]) - 1}")
        proof = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof

    def proofs(self) -> list[list[bytes]]:
        """The proof of every leaf, in leaf order (O(n log n) in total)."""
        return [self.proof(i) for i in range(len(self._levels[0]))]


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True if `proof` leads from `leaf` to `root`, exactly as OpenZeppelin `MerkleProof.verify` decides."""
    if len(leaf) != 32 or len(root) != 32 or any(len(node) != 32 for node in proof):
        return False
    computed = leaf
    for node in proof:
        computed = hash_pair(computed, node)
    return computed == root
