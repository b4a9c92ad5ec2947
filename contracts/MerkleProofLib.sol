// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev Merkle proof verification with sorted-pair keccak256, compatible with OpenZeppelin's
 * `MerkleProof.verifyCalldata` and `Hashes.commutativeKeccak256`.
 *
 * WARNING: a leaf must not be the 64-byte preimage of an inner node; TraceChain leaves are
 * keccak256(recordHash), a 32-byte preimage, which rules that out.
 */
library MerkleProofLib {
    /**
     * @dev Returns true if `leaf` is proven to be part of the tree with `root` by `proof`.
     */
    function verifyCalldata(bytes32[] calldata proof, bytes32 root, bytes32 leaf) internal pure returns (bool) {
        return processProofCalldata(proof, leaf) == root;
    }

    /**
     * @dev Rebuilds the root from `leaf` and its sibling hashes, hashing each pair in sorted order.
     */
    function processProofCalldata(bytes32[] calldata proof, bytes32 leaf) internal pure returns (bytes32) {
        bytes32 computedHash = leaf;
        uint256 length = proof.length;
        for (uint256 i = 0; i < length; ++i) {
            computedHash = commutativeKeccak256(computedHash, proof[i]);
        }
        return computedHash;
    }

    /**
     * @dev keccak256 of the sorted pair `(a, b)`, hashed in scratch space without allocating memory.
     */
    function commutativeKeccak256(bytes32 a, bytes32 b) internal pure returns (bytes32 value) {
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            value := keccak256(0x00, 0x40)
        }
    }
}
