// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";

/**
 * @title ConsortiumRegistry
 * @dev Members (agencies), roles, membership history and M-of-N governance of the TraceChain consortium.
 *
 * Governance is carried by the active MEMBERs: any of them may propose, each member identity votes once,
 * and the proposal is applied in the transaction whose YES vote reaches the {threshold}. Votes of members
 * that are no longer active do not count. Every change is re-validated after it is applied: at least one
 * active MEMBER, at least one active REGULATOR and a reachable threshold; the vote that would break one of
 * these reverts with the matching error and the proposal stays open.
 *
 * IMPORTANT: accounts are never reused. A removed or rotated account keeps its entry and history so that
 * anchors made while it was a member stay verifiable through {wasMemberAt}.
 */
contract ConsortiumRegistry is IConsortiumRegistry {
    uint8 private constant _ROLE_MEMBER = 1;
    uint8 private constant _ROLE_REGULATOR = 2;
    uint8 private constant _ROLE_ISSUER = 4;
    uint8 private constant _ALL_ROLES = _ROLE_MEMBER | _ROLE_REGULATOR | _ROLE_ISSUER;
    uint64 private constant _OPEN_RANGE = type(uint64).max;

    enum VoteType {
        None,
        For,
        Against
    }

    uint64 private immutable _proposalLifetime;

    mapping(address account => Member) private _members;
    mapping(address account => MembershipRange[]) private _history;
    mapping(uint256 identity => address) private _identityAccounts;
    address[] private _accounts;
    uint64 private _identityCount;
    uint256 private _activeMembers;
    uint256 private _activeRegulators;
    uint256 private _threshold;

    mapping(address account => bytes32) private _fingerprints;
    mapping(bytes32 fingerprint => address) private _fingerprintHolders;
    mapping(address account => bool) private _allowedAccounts;

    uint256 private _proposalCount;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(uint256 identity => VoteType)) private _votes;
    mapping(uint256 proposalId => uint256[]) private _voters;

    /**
     * @dev Sets up the initial members, the threshold (0 = dynamic majority), the proposal lifetime and the
     * non-member accounts allowed to transact.
     *
     * Requirements:
     *
     * - `accounts`, `names`, `codes` and `roles` have the same length.
     * - Accounts are non-zero and distinct; roles are valid bitmasks.
     * - At least one MEMBER and one REGULATOR; `initialThreshold` is reachable.
     * - `lifetimeBlocks` is not zero.
     *
     * Emits a {MemberAdded} event per member, an {AccountAllowanceSet} event per allowed account and a
     * {ThresholdChanged} event if `initialThreshold` is not zero.
     */
    constructor(
        address[] memory accounts,
        string[] memory names,
        string[] memory codes,
        uint8[] memory roles,
        uint256 initialThreshold,
        uint64 lifetimeBlocks,
        address[] memory allowedAccounts
    ) {
        uint256 count = accounts.length;
        if (names.length != count || codes.length != count || roles.length != count) {
            revert ConsortiumRegistryInitialMembersMismatch(count, names.length, codes.length, roles.length);
        }
        if (lifetimeBlocks == 0) revert ConsortiumRegistryInvalidProposalLifetime(lifetimeBlocks);
        _proposalLifetime = lifetimeBlocks;
        for (uint256 i = 0; i < count; ++i) {
            _addMember(accounts[i], names[i], codes[i], roles[i]);
        }
        for (uint256 i = 0; i < allowedAccounts.length; ++i) {
            _setAccountAllowed(allowedAccounts[i], true);
        }
        if (initialThreshold != 0) _setThreshold(initialThreshold);
        _validateInvariants();
    }

    // ------------------------------------------------------------------ proposals

    /**
     * @dev Proposes adding `account` as a new member with `roles`. The caller's vote counts as YES.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `account` is non-zero and was never added before; `roles` is a valid non-zero bitmask.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {MemberAdded} and {ProposalExecuted}.
     */
    function proposeAddMember(address account, string calldata name, string calldata code, uint8 roles)
        external
        returns (uint256)
    {
        Proposal memory p;
        p.kind = ProposalKind.AddMember;
        p.account = account;
        p.name = name;
        p.code = code;
        p.roles = roles;
        return _propose(p);
    }

    /**
     * @dev Proposes deactivating `account`. Its history is kept.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `account` is active, and removing it leaves a MEMBER, a REGULATOR and a reachable threshold.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {MemberRemoved} and {ProposalExecuted}.
     */
    function proposeRemoveMember(address account) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.RemoveMember;
        p.account = account;
        return _propose(p);
    }

    /**
     * @dev Proposes replacing the roles of `account` with `roles`.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `account` is active; `roles` is a valid non-zero bitmask; the change keeps the invariants.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {MemberRolesChanged} and {ProposalExecuted}.
     */
    function proposeSetRoles(address account, uint8 roles) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.SetRoles;
        p.account = account;
        p.roles = roles;
        return _propose(p);
    }

    /**
     * @dev Proposes moving the member at `oldAccount` to `newAccount`: same identity, name, code, roles and
     * issuer fingerprint; the old account's membership range ends and the new one's starts.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `oldAccount` is active; `newAccount` is non-zero and was never added before.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {MemberKeyRotated} and {ProposalExecuted}.
     */
    function proposeRotateKey(address oldAccount, address newAccount) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.RotateKey;
        p.account = oldAccount;
        p.newAccount = newAccount;
        return _propose(p);
    }

    /**
     * @dev Proposes a new threshold; 0 returns to a dynamic majority of the active members.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `newThreshold` is at most {activeMemberCount}.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {ThresholdChanged} and {ProposalExecuted}.
     */
    function proposeSetThreshold(uint256 newThreshold) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.SetThreshold;
        p.threshold = newThreshold;
        return _propose(p);
    }

    /**
     * @dev Proposes `fingerprint` (SHA-256 of the certificate-signing key) for the ISSUER `account`; zero clears it.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `account` is active with the ISSUER role; no other active ISSUER holds `fingerprint`.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {IssuerFingerprintSet} and {ProposalExecuted}.
     */
    function proposeSetIssuerFingerprint(address account, bytes32 fingerprint) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.SetIssuerFingerprint;
        p.account = account;
        p.fingerprint = fingerprint;
        return _propose(p);
    }

    /**
     * @dev Proposes allowing (or disallowing) a non-member `account` to send transactions on a permissioned chain.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - `account` is non-zero.
     *
     * Emits a {ProposalCreated} and a {VoteCast} event; may emit {AccountAllowanceSet} and {ProposalExecuted}.
     */
    function proposeSetAccountAllowed(address account, bool allowed) external returns (uint256) {
        Proposal memory p;
        p.kind = ProposalKind.SetAccountAllowed;
        p.account = account;
        p.allowed = allowed;
        return _propose(p);
    }

    /**
     * @dev Votes on a proposal. The YES vote that brings the valid YES votes to the threshold applies it.
     *
     * Requirements:
     *
     * - The caller is an active MEMBER whose identity has not voted on this proposal.
     * - The proposal is Active.
     * - If this vote executes the proposal, the change must still be valid (see the contract notes).
     *
     * Emits a {VoteCast} event; may emit the proposal's change event and {ProposalExecuted}.
     */
    function vote(uint256 proposalId, bool support) external {
        _checkMember(msg.sender);
        _validateStateBitmap(proposalId, _encodeStateBitmap(ProposalState.Active));
        _castVote(proposalId, msg.sender, support);
    }

    /**
     * @dev Applies an Active proposal whose valid YES votes already reach the threshold (for instance after
     * the threshold was lowered).
     *
     * Requirements:
     *
     * - The caller is an active MEMBER.
     * - The proposal is Active and its valid YES votes reach {threshold}; the change is still valid.
     *
     * Emits the proposal's change event and a {ProposalExecuted} event.
     */
    function execute(uint256 proposalId) external {
        _checkMember(msg.sender);
        _validateStateBitmap(proposalId, _encodeStateBitmap(ProposalState.Active));
        (uint256 forVotes, ) = _tally(proposalId);
        uint256 required = threshold();
        if (forVotes < required) revert ConsortiumRegistryThresholdNotReached(proposalId, forVotes, required);
        _execute(proposalId);
    }

    // ------------------------------------------------------------------ views

    /**
     * @dev Active until executed or until the block after `expiresAtBlock`, then Executed or Expired.
     *
     * Requirements:
     *
     * - `proposalId` exists.
     */
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) {
            revert ConsortiumRegistryNonexistentProposal(proposalId);
        }
        Proposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
        if (block.number > p.expiresAtBlock) return ProposalState.Expired;
        return ProposalState.Active;
    }

    /**
     * @dev The stored proposal.
     *
     * Requirements:
     *
     * - `proposalId` exists.
     */
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        proposalState(proposalId);
        return _proposals[proposalId];
    }

    /**
     * @dev The YES and NO votes cast by identities that are still active MEMBERs.
     *
     * Requirements:
     *
     * - `proposalId` exists.
     */
    function proposalVotes(uint256 proposalId) external view returns (uint256 forVotes, uint256 againstVotes) {
        proposalState(proposalId);
        return _tally(proposalId);
    }

    /// @dev The number of proposals ever created; ids run from 1 to this value.
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @dev Whether the identity behind `account` voted on `proposalId` (false for unknown accounts).
    function hasVoted(uint256 proposalId, address account) external view returns (bool) {
        uint256 identity = _members[account].identity;
        return identity != 0 && _votes[proposalId][identity] != VoteType.None;
    }

    /// @dev The number of blocks a proposal stays Active after the block it was created in.
    function proposalLifetimeBlocks() external view returns (uint64) {
        return _proposalLifetime;
    }

    /// @dev The member entry of `account`; all fields are zero for an unknown account.
    function member(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @dev Every account ever added, in order, including removed and rotated ones.
    function memberAddresses() external view returns (address[] memory) {
        return _accounts;
    }

    /// @dev The stable member id of `account` (0 if unknown); a rotated key keeps the id of its predecessor.
    function identityOf(address account) external view returns (uint256) {
        return _members[account].identity;
    }

    /// @dev The current account of member `identity` (zero address if unknown).
    function accountOf(uint256 identity) external view returns (address) {
        return _identityAccounts[identity];
    }

    /// @dev Whether `account` is active and holds the MEMBER role.
    function isActiveMember(address account) public view returns (bool) {
        Member storage m = _members[account];
        return m.active && (m.roles & _ROLE_MEMBER) != 0;
    }

    /// @dev Whether `account` is active and holds every bit of `role`; false for `role == 0` (fail closed).
    function hasRole(address account, uint8 role) public view returns (bool) {
        Member storage m = _members[account];
        return role != 0 && m.active && (m.roles & role) == role;
    }

    /**
     * @dev Whether `account` was an active MEMBER at some point during block `blockNumber`.
     *
     * NOTE: both ends of a range are inclusive: a member removed in block R still answers true for R,
     * because any anchor it made in R was ordered before the removal.
     */
    function wasMemberAt(address account, uint256 blockNumber) external view returns (bool) {
        MembershipRange[] storage ranges = _history[account];
        for (uint256 i = ranges.length; i > 0; --i) {
            MembershipRange storage r = ranges[i - 1];
            if (blockNumber >= r.fromBlock && blockNumber <= r.toBlock) return true;
        }
        return false;
    }

    /// @dev The block ranges in which `account` was an active MEMBER, oldest first.
    function membershipHistory(address account) external view returns (MembershipRange[] memory) {
        return _history[account];
    }

    /// @dev The number of accounts that are active and hold the MEMBER role (the voters).
    function activeMemberCount() external view returns (uint256) {
        return _activeMembers;
    }

    /// @dev The number of accounts that are active and hold the REGULATOR role.
    function activeRegulatorCount() external view returns (uint256) {
        return _activeRegulators;
    }

    /// @dev The effective threshold: the configured one, or a majority of active MEMBERs when it is 0.
    function threshold() public view returns (uint256) {
        return _effectiveThreshold(_threshold, _activeMembers);
    }

    /// @dev The configured threshold; 0 means a dynamic majority.
    function configuredThreshold() external view returns (uint256) {
        return _threshold;
    }

    /// @dev The certificate-key fingerprint registered for `account` (zero if none).
    function issuerFingerprint(address account) external view returns (bytes32) {
        return _fingerprints[account];
    }

    /// @dev Whether `fingerprint` is registered to an account that is currently active with the ISSUER role.
    function isIssuerFingerprint(bytes32 fingerprint) public view returns (bool) {
        if (fingerprint == bytes32(0)) return false;
        address holder = _fingerprintHolders[fingerprint];
        return holder != address(0) && _fingerprints[holder] == fingerprint && hasRole(holder, _ROLE_ISSUER);
    }

    /// @dev Whether the non-member `account` is allowed to transact through governance or the constructor.
    function isAccountAllowed(address account) external view returns (bool) {
        return _allowedAccounts[account];
    }

    /**
     * @dev Hyperledger Besu account permissioning hook: true for active member entries (any role) and for
     * allowed accounts, false for everyone else. Only `sender` is considered.
     */
    function transactionAllowed(
        address sender,
        address, /* target */
        uint256, /* value */
        uint256, /* gasPrice */
        uint256, /* gasLimit */
        bytes calldata /* payload */
    ) external view returns (bool) {
        return _members[sender].active || _allowedAccounts[sender];
    }

    // ------------------------------------------------------------------ governance internals

    /// @dev Validates and stores a proposal from an active MEMBER, then casts the proposer's YES vote.
    function _propose(Proposal memory p) private returns (uint256 proposalId) {
        _checkMember(msg.sender);
        _validateAction(p);
        uint256 expiry = block.number + _proposalLifetime;
        p.proposer = msg.sender;
        p.createdAtBlock = uint64(block.number);
        p.expiresAtBlock = expiry > _OPEN_RANGE ? _OPEN_RANGE : uint64(expiry);
        proposalId = ++_proposalCount;
        _proposals[proposalId] = p;
        emit ProposalCreated(proposalId, msg.sender, uint8(p.kind), p.expiresAtBlock);
        _castVote(proposalId, msg.sender, true);
    }

    /// @dev Records a vote by the identity of `voter` and executes the proposal once YES reaches the threshold.
    function _castVote(uint256 proposalId, address voter, bool support) private {
        uint256 identity = _members[voter].identity;
        if (_votes[proposalId][identity] != VoteType.None) {
            revert ConsortiumRegistryAlreadyVoted(proposalId, voter);
        }
        _votes[proposalId][identity] = support ? VoteType.For : VoteType.Against;
        _voters[proposalId].push(identity);
        emit VoteCast(proposalId, voter, support);
        if (support) {
            (uint256 forVotes, ) = _tally(proposalId);
            if (forVotes >= threshold()) _execute(proposalId);
        }
    }

    /// @dev Counts the votes of identities whose current account is still an active MEMBER.
    function _tally(uint256 proposalId) private view returns (uint256 forVotes, uint256 againstVotes) {
        uint256[] storage voters = _voters[proposalId];
        uint256 length = voters.length;
        for (uint256 i = 0; i < length; ++i) {
            uint256 identity = voters[i];
            if (!isActiveMember(_identityAccounts[identity])) continue;
            if (_votes[proposalId][identity] == VoteType.For) ++forVotes;
            else ++againstVotes;
        }
    }

    /// @dev Re-validates the change, marks the proposal executed (checks-effects), applies it, re-checks invariants.
    function _execute(uint256 proposalId) private {
        Proposal memory p = _proposals[proposalId];
        _validateAction(p);
        _proposals[proposalId].executed = true;
        _apply(p);
        _validateInvariants();
        emit ProposalExecuted(proposalId);
    }

    /// @dev Applies a validated proposal without access control.
    function _apply(Proposal memory p) private {
        if (p.kind == ProposalKind.AddMember) _addMember(p.account, p.name, p.code, p.roles);
        else if (p.kind == ProposalKind.RemoveMember) _removeMember(p.account);
        else if (p.kind == ProposalKind.SetRoles) _setRoles(p.account, p.roles);
        else if (p.kind == ProposalKind.RotateKey) _rotateKey(p.account, p.newAccount);
        else if (p.kind == ProposalKind.SetThreshold) _setThreshold(p.threshold);
        else if (p.kind == ProposalKind.SetIssuerFingerprint) _setIssuerFingerprint(p.account, p.fingerprint);
        else _setAccountAllowed(p.account, p.allowed);
    }

    /**
     * @dev Reverts if the change described by `p` cannot be applied to the current state, including the
     * projected member, regulator and threshold invariants.
     */
    function _validateAction(Proposal memory p) private view {
        ProposalKind kind = p.kind;
        if (kind == ProposalKind.AddMember) {
            _checkFreshAccount(p.account);
            _checkRoles(p.roles);
        } else if (kind == ProposalKind.RemoveMember) {
            _checkActive(p.account);
            _checkProjectedRoles(_members[p.account].roles, 0, _threshold);
        } else if (kind == ProposalKind.SetRoles) {
            _checkActive(p.account);
            _checkRoles(p.roles);
            _checkProjectedRoles(_members[p.account].roles, p.roles, _threshold);
        } else if (kind == ProposalKind.RotateKey) {
            _checkActive(p.account);
            _checkFreshAccount(p.newAccount);
        } else if (kind == ProposalKind.SetThreshold) {
            _checkInvariants(_activeMembers, _activeRegulators, p.threshold);
        } else if (kind == ProposalKind.SetIssuerFingerprint) {
            if (!hasRole(p.account, _ROLE_ISSUER)) revert ConsortiumRegistryMissingRole(p.account, _ROLE_ISSUER);
            address holder = _fingerprintHolders[p.fingerprint];
            if (holder != p.account && isIssuerFingerprint(p.fingerprint)) {
                revert ConsortiumRegistryFingerprintInUse(p.fingerprint, holder);
            }
        } else if (p.account == address(0)) {
            revert ConsortiumRegistryInvalidAccount(p.account);
        }
    }

    /// @dev Checks the invariants as they would be after an active entry's roles go from `fromRoles` to `toRoles`.
    function _checkProjectedRoles(uint8 fromRoles, uint8 toRoles, uint256 configured) private view {
        uint256 members = _activeMembers;
        uint256 regulators = _activeRegulators;
        if (fromRoles & _ROLE_MEMBER != 0) --members;
        if (toRoles & _ROLE_MEMBER != 0) ++members;
        if (fromRoles & _ROLE_REGULATOR != 0) --regulators;
        if (toRoles & _ROLE_REGULATOR != 0) ++regulators;
        _checkInvariants(members, regulators, configured);
    }

    /// @dev Reverts unless the current state satisfies the consortium invariants.
    function _validateInvariants() private view {
        _checkInvariants(_activeMembers, _activeRegulators, _threshold);
    }

    /// @dev Reverts unless there is a MEMBER, a REGULATOR and the threshold is between 1 and `members`.
    function _checkInvariants(uint256 members, uint256 regulators, uint256 configured) private pure {
        if (members == 0) revert ConsortiumRegistryNoActiveMembers();
        if (regulators == 0) revert ConsortiumRegistryNoActiveRegulator();
        uint256 effective = _effectiveThreshold(configured, members);
        if (effective > members) revert ConsortiumRegistryUnreachableThreshold(effective, members);
    }

    /// @dev A configured threshold of 0 means a majority of `members`.
    function _effectiveThreshold(uint256 configured, uint256 members) private pure returns (uint256) {
        return configured == 0 ? members / 2 + 1 : configured;
    }

    /// @dev Reverts unless `proposalId` exists and its state is in `allowedStates`; returns the state.
    function _validateStateBitmap(uint256 proposalId, bytes32 allowedStates) private view returns (ProposalState) {
        ProposalState current = proposalState(proposalId);
        if (_encodeStateBitmap(current) & allowedStates == bytes32(0)) {
            revert ConsortiumRegistryUnexpectedProposalState(proposalId, current, allowedStates);
        }
        return current;
    }

    /// @dev One bit per {ProposalState}.
    function _encodeStateBitmap(ProposalState state) private pure returns (bytes32) {
        return bytes32(1 << uint8(state));
    }

    // ------------------------------------------------------------------ membership internals

    /// @dev Adds a fresh member without access control.
    function _addMember(address account, string memory name, string memory code, uint8 roles) private {
        _checkFreshAccount(account);
        _checkRoles(roles);
        uint64 identity = ++_identityCount;
        Member storage m = _members[account];
        m.identity = identity;
        m.name = name;
        m.code = code;
        _identityAccounts[identity] = account;
        _accounts.push(account);
        _setStatus(account, roles, true);
        emit MemberAdded(account, name, code, roles);
    }

    /// @dev Deactivates a member without access control; roles and history are kept.
    function _removeMember(address account) private {
        _checkActive(account);
        _setStatus(account, _members[account].roles, false);
        emit MemberRemoved(account);
    }

    /// @dev Replaces the roles of an active member without access control.
    function _setRoles(address account, uint8 roles) private {
        _checkActive(account);
        _checkRoles(roles);
        uint8 previous = _members[account].roles;
        _setStatus(account, roles, true);
        emit MemberRolesChanged(account, previous, roles);
    }

    /// @dev Moves a member to a fresh account without access control (identity, data and fingerprint move).
    function _rotateKey(address oldAccount, address newAccount) private {
        _checkActive(oldAccount);
        _checkFreshAccount(newAccount);
        Member storage previous = _members[oldAccount];
        uint8 roles = previous.roles;
        uint64 identity = previous.identity;
        Member storage next = _members[newAccount];
        next.identity = identity;
        next.name = previous.name;
        next.code = previous.code;
        previous.successor = newAccount;
        _identityAccounts[identity] = newAccount;
        _accounts.push(newAccount);
        _setStatus(oldAccount, roles, false);
        _setStatus(newAccount, roles, true);
        bytes32 fingerprint = _fingerprints[oldAccount];
        if (fingerprint != bytes32(0)) {
            delete _fingerprints[oldAccount];
            _fingerprints[newAccount] = fingerprint;
            _fingerprintHolders[fingerprint] = newAccount;
        }
        emit MemberKeyRotated(oldAccount, newAccount);
    }

    /// @dev Sets the configured threshold without access control; callers re-validate reachability.
    function _setThreshold(uint256 newThreshold) private {
        uint256 previous = _threshold;
        _threshold = newThreshold;
        emit ThresholdChanged(previous, newThreshold);
    }

    /**
     * @dev Registers the fingerprint of an ISSUER without access control; zero clears it. A former holder
     * that is no longer an active ISSUER (checked by the caller) loses the fingerprint.
     */
    function _setIssuerFingerprint(address account, bytes32 fingerprint) private {
        bytes32 previous = _fingerprints[account];
        if (previous != bytes32(0) && _fingerprintHolders[previous] == account) {
            delete _fingerprintHolders[previous];
        }
        if (fingerprint != bytes32(0)) {
            address formerHolder = _fingerprintHolders[fingerprint];
            if (formerHolder != address(0) && formerHolder != account) {
                delete _fingerprints[formerHolder];
                emit IssuerFingerprintSet(formerHolder, bytes32(0));
            }
            _fingerprintHolders[fingerprint] = account;
        }
        _fingerprints[account] = fingerprint;
        emit IssuerFingerprintSet(account, fingerprint);
    }

    /// @dev Allows or disallows a non-member account without access control.
    function _setAccountAllowed(address account, bool allowed) private {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        _allowedAccounts[account] = allowed;
        emit AccountAllowanceSet(account, allowed);
    }

    /**
     * @dev Writes roles and the active flag of an entry, keeping the member/regulator counters and the
     * membership history in step.
     */
    function _setStatus(address account, uint8 roles, bool active) private {
        Member storage m = _members[account];
        bool wasMember = m.active && (m.roles & _ROLE_MEMBER) != 0;
        bool wasRegulator = m.active && (m.roles & _ROLE_REGULATOR) != 0;
        m.roles = roles;
        m.active = active;
        bool isMember = active && (roles & _ROLE_MEMBER) != 0;
        bool isRegulator = active && (roles & _ROLE_REGULATOR) != 0;
        if (wasMember != isMember) {
            // block numbers fit in uint64 for the lifetime of any chain.
            uint64 blockNumber = uint64(block.number);
            if (isMember) {
                ++_activeMembers;
                _history[account].push(MembershipRange(blockNumber, _OPEN_RANGE));
            } else {
                --_activeMembers;
                MembershipRange[] storage ranges = _history[account];
                ranges[ranges.length - 1].toBlock = blockNumber;
            }
        }
        if (wasRegulator != isRegulator) {
            if (isRegulator) ++_activeRegulators;
            else --_activeRegulators;
        }
    }

    /// @dev Reverts unless `account` is an active MEMBER.
    function _checkMember(address account) private view {
        if (!isActiveMember(account)) revert ConsortiumRegistryNotMember(account);
    }

    /// @dev Reverts unless `account` is an active entry.
    function _checkActive(address account) private view {
        if (!_members[account].active) revert ConsortiumRegistryInactiveAccount(account);
    }

    /// @dev Reverts unless `account` is non-zero and was never added.
    function _checkFreshAccount(address account) private view {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        if (_members[account].identity != 0) revert ConsortiumRegistryAccountExists(account);
    }

    /// @dev Reverts unless `roles` is non-zero and uses only MEMBER|REGULATOR|ISSUER bits.
    function _checkRoles(uint8 roles) private pure {
        if (roles == 0 || roles & ~_ALL_ROLES != 0) revert ConsortiumRegistryInvalidRoles(roles);
    }
}
