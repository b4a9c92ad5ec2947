// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {ITraceAnchor} from "./interfaces/ITraceAnchor.sol";
import {MerkleProofLib} from "./MerkleProofLib.sol";

/**
 * @title TraceAnchor
 * @dev Anchors Merkle roots of record batches, revokes single records and recalls lots. Roles come from the
 * {IConsortiumRegistry}; every check fails closed.
 *
 * A batch is stored in one slot: agency (160 bits) | block number (32) | timestamp (32) | count (24) |
 * schema version (8), so an anchor costs a single fresh SSTORE.
 */
contract TraceAnchor is ITraceAnchor {
    uint8 private constant _ROLE_REGULATOR = 2;

    struct Revocation {
        uint64 timestamp;
        string reason;
    }

    struct Recall {
        uint64 timestamp;
        address recalledBy;
        string reason;
    }

    IConsortiumRegistry private immutable _registry;

    mapping(bytes32 root => uint256 packed) private _batches;
    /// @dev Keyed by the batch the revocation was proven against as well as the record: the permission check
    /// covers that batch only, so a record hash alone would let any member revoke another agency's record by
    /// anchoring a root of its own that contains the victim's (public) leaf.
    mapping(bytes32 root => mapping(bytes32 recordHash => Revocation)) private _revocations;
    mapping(bytes32 traceCodeHash => Recall) private _recalls;

    /**
     * @dev Binds the anchor to `registry_`.
     *
     * Requirements:
     *
     * - `registry_` is a deployed contract.
     */
    constructor(IConsortiumRegistry registry_) {
        if (address(registry_).code.length == 0) revert TraceAnchorInvalidRegistry(address(registry_));
        _registry = registry_;
    }

    /**
     * @dev Anchors the Merkle `root` of a batch of `count` records written with `schemaVersion`.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER of the registry.
     * - `root` and `count` are not zero; `root` was never anchored.
     *
     * Emits a {BatchAnchored} event.
     */
    function anchorBatch(bytes32 root, uint24 count, uint8 schemaVersion) external {
        if (!_registry.isActiveMember(msg.sender)) revert TraceAnchorNotMember(msg.sender);
        _anchorBatch(msg.sender, root, count, schemaVersion);
    }

    /**
     * @dev Revokes `recordHash` as a record of the batch `root`, proven with the sorted-pair Merkle `proof`
     * of the leaf keccak256(recordHash). The revocation holds for (`root`, `recordHash`) only: revoking under one
     * root never marks the same record hash revoked under another root.
     *
     * Requirements:
     *
     * - `root` was anchored.
     * - The caller is an active MEMBER with the identity of the anchoring agency (a rotated key may revoke),
     *   or an active REGULATOR.
     * - `recordHash` was not revoked under `root` before and `proof` is valid.
     *
     * Emits a {RecordRevoked} event.
     */
    function revokeRecord(bytes32 root, bytes32 recordHash, bytes32[] calldata proof, string calldata reason)
        external
    {
        uint256 packed = _batches[root];
        if (packed == 0) revert TraceAnchorUnknownRoot(root);
        if (!_mayRevoke(msg.sender, address(uint160(packed)))) revert TraceAnchorUnauthorizedRevoker(msg.sender, root);
        if (_revocations[root][recordHash].timestamp != 0) revert TraceAnchorAlreadyRevoked(root, recordHash);
        if (!MerkleProofLib.verifyCalldata(proof, root, keccak256(abi.encodePacked(recordHash)))) {
            revert TraceAnchorInvalidProof(root, recordHash);
        }
        _revokeRecord(msg.sender, root, recordHash, reason);
    }

    /**
     * @dev Recalls the lot whose trace code hashes (keccak256 of its UTF-8 bytes) to `traceCodeHash`.
     *
     * Requirements:
     *
     * - The caller is an active REGULATOR.
     * - `traceCodeHash` is not zero and was not recalled before.
     *
     * Emits a {LotRecalled} event.
     */
    function recallLot(bytes32 traceCodeHash, string calldata reason) external {
        if (!_registry.hasRole(msg.sender, _ROLE_REGULATOR)) revert TraceAnchorNotRegulator(msg.sender);
        if (traceCodeHash == bytes32(0)) revert TraceAnchorZeroTraceCodeHash();
        if (_recalls[traceCodeHash].timestamp != 0) revert TraceAnchorAlreadyRecalled(traceCodeHash);
        _recallLot(msg.sender, traceCodeHash, reason);
    }

    /// @dev The anchored batch `root`; all fields are zero if it was never anchored.
    function batch(bytes32 root)
        external
        view
        returns (address agency, uint32 blockNumber, uint32 timestamp, uint24 count, uint8 schemaVersion)
    {
        uint256 packed = _batches[root];
        agency = address(uint160(packed));
        blockNumber = uint32(packed >> 160);
        timestamp = uint32(packed >> 192);
        count = uint24(packed >> 224);
        schemaVersion = uint8(packed >> 248);
    }

    /// @dev The revocation of `recordHash` as a record of the batch `root`; `revoked` is false (and the rest
    /// zero) if it was never revoked under that root.
    function revocation(bytes32 root, bytes32 recordHash)
        external
        view
        returns (bool revoked, uint64 timestamp, string memory reason)
    {
        Revocation storage r = _revocations[root][recordHash];
        return (r.timestamp != 0, r.timestamp, r.reason);
    }

    /// @dev The recall of `traceCodeHash`; `recalled` is false (and the rest zero) if it was never recalled.
    function recall(bytes32 traceCodeHash)
        external
        view
        returns (bool recalled, uint64 timestamp, address recalledBy, string memory reason)
    {
        Recall storage r = _recalls[traceCodeHash];
        return (r.timestamp != 0, r.timestamp, r.recalledBy, r.reason);
    }

    /// @dev The consortium registry consulted for every role check.
    function registry() external view returns (IConsortiumRegistry) {
        return _registry;
    }

    /// @dev Stores a batch in one packed slot without access control.
    function _anchorBatch(address agency, bytes32 root, uint24 count, uint8 schemaVersion) private {
        if (root == bytes32(0)) revert TraceAnchorZeroRoot();
        if (count == 0) revert TraceAnchorZeroCount();
        uint256 existing = _batches[root];
        if (existing != 0) revert TraceAnchorDuplicateRoot(root, address(uint160(existing)));
        if (block.number > type(uint32).max || block.timestamp > type(uint32).max) revert TraceAnchorClockOverflow();
        _batches[root] =
            uint256(uint160(agency)) |
            (block.number << 160) |
            (block.timestamp << 192) |
            (uint256(count) << 224) |
            (uint256(schemaVersion) << 248);
        emit BatchAnchored(root, agency, count, schemaVersion);
    }

    /// @dev Stores a revocation without access control.
    function _revokeRecord(address revokedBy, bytes32 root, bytes32 recordHash, string calldata reason) private {
        _revocations[root][recordHash] = Revocation(uint64(block.timestamp), reason);
        emit RecordRevoked(root, recordHash, revokedBy, reason);
    }

    /// @dev Stores a recall without access control.
    function _recallLot(address recalledBy, bytes32 traceCodeHash, string calldata reason) private {
        _recalls[traceCodeHash] = Recall(uint64(block.timestamp), recalledBy, reason);
        emit LotRecalled(traceCodeHash, recalledBy, reason);
    }

    /// @dev Whether `account` is an active REGULATOR, or an active MEMBER sharing the identity of `agency`.
    function _mayRevoke(address account, address agency) private view returns (bool) {
        if (_registry.hasRole(account, _ROLE_REGULATOR)) return true;
        uint256 identity = _registry.identityOf(account);
        return identity != 0 && identity == _registry.identityOf(agency) && _registry.isActiveMember(account);
    }
}
