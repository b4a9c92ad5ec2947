// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/**
 * @dev Anchors Merkle roots of traceability record batches, revokes single records and recalls lots.
 *
 * Merkle leaf = keccak256(recordHash); the tree uses OpenZeppelin's sorted-pair keccak256.
 */
interface ITraceAnchor {
    /// @dev A batch root was anchored by `agency`.
    event BatchAnchored(bytes32 indexed root, address indexed agency, uint256 count, uint8 schemaVersion);

    /// @dev A record of an anchored batch was revoked.
    event RecordRevoked(bytes32 indexed root, bytes32 indexed recordHash, address indexed revokedBy, string reason);

    /// @dev A lot (keccak256 of its trace code) was recalled by a regulator.
    event LotRecalled(bytes32 indexed traceCodeHash, address indexed recalledBy, string reason);

    /// @dev The account is not an active consortium member.
    error TraceAnchorNotMember(address account);

    /// @dev The account is not an active regulator.
    error TraceAnchorNotRegulator(address account);

    /// @dev The registry address has no code.
    error TraceAnchorInvalidRegistry(address registry);

    /// @dev The root is zero.
    error TraceAnchorZeroRoot();

    /// @dev The batch record count is zero.
    error TraceAnchorZeroCount();

    /// @dev The root was already anchored by `agency`.
    error TraceAnchorDuplicateRoot(bytes32 root, address agency);

    /// @dev The root was never anchored.
    error TraceAnchorUnknownRoot(bytes32 root);

    /// @dev The proof does not show keccak256(recordHash) to be a leaf of `root`.
    error TraceAnchorInvalidProof(bytes32 root, bytes32 recordHash);

    /// @dev The account is neither the anchoring agency nor an active regulator.
    error TraceAnchorUnauthorizedRevoker(address account, bytes32 root);

    /// @dev The record was already revoked under the batch `root`.
    error TraceAnchorAlreadyRevoked(bytes32 root, bytes32 recordHash);

    /// @dev The trace code hash is zero.
    error TraceAnchorZeroTraceCodeHash();

    /// @dev The lot was already recalled.
    error TraceAnchorAlreadyRecalled(bytes32 traceCodeHash);

    /// @dev The block number or timestamp no longer fits the packed batch slot.
    error TraceAnchorClockOverflow();

    /// @dev Anchors a batch root; only an active MEMBER.
    function anchorBatch(bytes32 root, uint24 count, uint8 schemaVersion) external;

    /**
     * @dev Revokes `recordHash` as a record of the anchored batch `root`, proven by the sorted-pair Merkle
     * `proof` of the leaf keccak256(recordHash). Only the agency that anchored `root` (any active key of its
     * identity) or an active REGULATOR may revoke. The revocation is stored under (`root`, `recordHash`): it
     * says nothing about the same record hash under another root.
     */
    function revokeRecord(bytes32 root, bytes32 recordHash, bytes32[] calldata proof, string calldata reason)
        external;

    /// @dev Recalls a lot by the keccak256 of its trace code; only an active REGULATOR.
    function recallLot(bytes32 traceCodeHash, string calldata reason) external;

    /// @dev The anchored batch (all zero if unknown).
    function batch(bytes32 root)
        external
        view
        returns (address agency, uint32 blockNumber, uint32 timestamp, uint24 count, uint8 schemaVersion);

    /**
     * @dev The revocation of `recordHash` as a record of the batch `root`.
     * @return revoked Whether the record was revoked under `root` (false, and the rest zero, if not).
     * @return timestamp Unix time (seconds) of the revoking block.
     * @return reason Reason given by the revoker.
     */
    function revocation(bytes32 root, bytes32 recordHash)
        external
        view
        returns (bool revoked, uint64 timestamp, string memory reason);

    /// @dev The recall of a lot (recalled is false if none).
    function recall(bytes32 traceCodeHash)
        external
        view
        returns (bool recalled, uint64 timestamp, address recalledBy, string memory reason);

    /// @dev The consortium registry consulted for roles.
    function registry() external view returns (IConsortiumRegistry);
}
