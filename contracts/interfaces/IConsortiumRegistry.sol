// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev Membership, roles and M-of-N governance of the TraceChain consortium (Shanghai agencies).
 *
 * Roles are a bitmask: MEMBER = 1 (anchors batches and takes part in governance), REGULATOR = 2
 * (revokes any record, recalls lots), ISSUER = 4 (holds the certificate-signing key fingerprint).
 */
interface IConsortiumRegistry {
    /// @dev The kinds of governance proposals.
    enum ProposalKind {
        AddMember,
        RemoveMember,
        SetRoles,
        RotateKey,
        SetThreshold,
        SetIssuerFingerprint,
        SetAccountAllowed
    }

    /// @dev The derived state of a proposal (see {proposalState}).
    enum ProposalState {
        Active,
        Executed,
        Expired
    }

    /// @dev A member entry, keyed by account. `successor` is set when the key was rotated away.
    struct Member {
        uint64 identity;
        uint8 roles;
        bool active;
        address successor;
        string name;
        string code;
    }

    /// @dev A block range `[fromBlock, toBlock]` (both inclusive) in which an account was an active MEMBER.
    /// `toBlock == type(uint64).max` while the range is still open.
    struct MembershipRange {
        uint64 fromBlock;
        uint64 toBlock;
    }

    /// @dev A governance proposal; only the fields relevant to its `kind` are set.
    struct Proposal {
        ProposalKind kind;
        address proposer;
        uint64 createdAtBlock;
        uint64 expiresAtBlock;
        bool executed;
        address account;
        address newAccount;
        uint8 roles;
        bool allowed;
        uint256 threshold;
        bytes32 fingerprint;
        string name;
        string code;
    }

    /// @dev A member was added (also emitted for every initial member).
    event MemberAdded(address indexed account, string name, string code, uint8 roles);

    /// @dev A member was deactivated; its history is kept.
    event MemberRemoved(address indexed account);

    /// @dev The roles of an active member changed.
    event MemberRolesChanged(address indexed account, uint8 previousRoles, uint8 newRoles);

    /// @dev A member's key was rotated; both accounts share one identity.
    event MemberKeyRotated(address indexed previousAccount, address indexed newAccount);

    /// @dev The configured threshold changed (0 means a dynamic majority of active members).
    event ThresholdChanged(uint256 previousThreshold, uint256 newThreshold);

    /// @dev The certificate-signing key fingerprint of an ISSUER was set (zero clears it).
    event IssuerFingerprintSet(address indexed account, bytes32 fingerprint);

    /// @dev A non-member account was allowed or disallowed to send transactions (Besu permissioning).
    event AccountAllowanceSet(address indexed account, bool allowed);

    /// @dev A proposal was created; `kind` is a {ProposalKind}.
    event ProposalCreated(uint256 indexed proposalId, address indexed proposer, uint8 kind, uint64 expiresAtBlock);

    /// @dev A member voted on a proposal.
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support);

    /// @dev A proposal reached the threshold and was applied.
    event ProposalExecuted(uint256 indexed proposalId);

    /// @dev The account is not an active consortium member (active with the MEMBER role).
    error ConsortiumRegistryNotMember(address account);

    /// @dev The account is the zero address.
    error ConsortiumRegistryInvalidAccount(address account);

    /// @dev The account was already added once (accounts are never reused).
    error ConsortiumRegistryAccountExists(address account);

    /// @dev The account is not an active member entry.
    error ConsortiumRegistryInactiveAccount(address account);

    /// @dev The roles bitmask is zero or has bits other than MEMBER|REGULATOR|ISSUER.
    error ConsortiumRegistryInvalidRoles(uint8 roles);

    /// @dev The account does not hold the required role.
    error ConsortiumRegistryMissingRole(address account, uint8 role);

    /// @dev The change would leave no active MEMBER.
    error ConsortiumRegistryNoActiveMembers();

    /// @dev The change would leave no active REGULATOR.
    error ConsortiumRegistryNoActiveRegulator();

    /// @dev The threshold cannot be reached by the active members.
    error ConsortiumRegistryUnreachableThreshold(uint256 threshold, uint256 activeMembers);

    /// @dev The fingerprint is already held by another active ISSUER.
    error ConsortiumRegistryFingerprintInUse(bytes32 fingerprint, address holder);

    /// @dev The constructor arrays have different lengths.
    error ConsortiumRegistryInitialMembersMismatch(uint256 accounts, uint256 names, uint256 codes, uint256 roles);

    /// @dev The proposal lifetime is zero.
    error ConsortiumRegistryInvalidProposalLifetime(uint64 lifetimeBlocks);

    /// @dev No proposal has this id.
    error ConsortiumRegistryNonexistentProposal(uint256 proposalId);

    /// @dev The proposal is not in one of the expected states (`expectedStates` is a bitmap of {ProposalState}).
    error ConsortiumRegistryUnexpectedProposalState(uint256 proposalId, ProposalState current, bytes32 expectedStates);

    /// @dev The member (identity) already voted on the proposal.
    error ConsortiumRegistryAlreadyVoted(uint256 proposalId, address account);

    /// @dev The proposal has fewer valid YES votes than the threshold.
    error ConsortiumRegistryThresholdNotReached(uint256 proposalId, uint256 votes, uint256 threshold);

    /// @dev Proposes adding `account` with `roles`; returns the proposal id. The proposer's vote counts as YES.
    function proposeAddMember(address account, string calldata name, string calldata code, uint8 roles)
        external
        returns (uint256 proposalId);

    /// @dev Proposes deactivating `account`; returns the proposal id.
    function proposeRemoveMember(address account) external returns (uint256 proposalId);

    /// @dev Proposes replacing the roles of `account`; returns the proposal id.
    function proposeSetRoles(address account, uint8 roles) external returns (uint256 proposalId);

    /// @dev Proposes moving a member from `oldAccount` to the fresh `newAccount`; returns the proposal id.
    function proposeRotateKey(address oldAccount, address newAccount) external returns (uint256 proposalId);

    /// @dev Proposes a new threshold (0 returns to a dynamic majority); returns the proposal id.
    function proposeSetThreshold(uint256 newThreshold) external returns (uint256 proposalId);

    /// @dev Proposes the certificate-key fingerprint of an ISSUER; returns the proposal id.
    function proposeSetIssuerFingerprint(address account, bytes32 fingerprint) external returns (uint256 proposalId);

    /// @dev Proposes allowing or disallowing a non-member account (Besu permissioning); returns the proposal id.
    function proposeSetAccountAllowed(address account, bool allowed) external returns (uint256 proposalId);

    /// @dev Votes on an active proposal; the vote that reaches the threshold executes it.
    function vote(uint256 proposalId, bool support) external;

    /// @dev Executes an active proposal whose valid YES votes already reach the threshold.
    function execute(uint256 proposalId) external;

    /// @dev The derived state of a proposal.
    function proposalState(uint256 proposalId) external view returns (ProposalState);

    /// @dev The stored proposal.
    function proposal(uint256 proposalId) external view returns (Proposal memory);

    /// @dev The YES and NO votes of members that are still active.
    function proposalVotes(uint256 proposalId) external view returns (uint256 forVotes, uint256 againstVotes);

    /// @dev The number of proposals ever created (ids are 1..proposalCount).
    function proposalCount() external view returns (uint256);

    /// @dev Whether the identity behind `account` voted on the proposal.
    function hasVoted(uint256 proposalId, address account) external view returns (bool);

    /// @dev The number of blocks a proposal stays open.
    function proposalLifetimeBlocks() external view returns (uint64);

    /// @dev The member entry of `account` (all zero if unknown).
    function member(address account) external view returns (Member memory);

    /// @dev Every account ever added, including removed and rotated ones.
    function memberAddresses() external view returns (address[] memory);

    /// @dev The stable member id of `account` (0 if unknown); rotated keys share it.
    function identityOf(address account) external view returns (uint256);

    /// @dev The current account of a member identity.
    function accountOf(uint256 identity) external view returns (address);

    /// @dev Whether `account` is active with the MEMBER role.
    function isActiveMember(address account) external view returns (bool);

    /// @dev Whether `account` is active and holds every bit of `role` (false for role 0).
    function hasRole(address account, uint8 role) external view returns (bool);

    /// @dev Whether `account` was an active MEMBER at some point during block `blockNumber`.
    function wasMemberAt(address account, uint256 blockNumber) external view returns (bool);

    /// @dev The block ranges in which `account` was an active MEMBER.
    function membershipHistory(address account) external view returns (MembershipRange[] memory);

    /// @dev The number of accounts that are active with the MEMBER role.
    function activeMemberCount() external view returns (uint256);

    /// @dev The number of accounts that are active with the REGULATOR role.
    function activeRegulatorCount() external view returns (uint256);

    /// @dev The effective threshold (a majority of active members when the configured one is 0).
    function threshold() external view returns (uint256);

    /// @dev The configured threshold (0 means a dynamic majority).
    function configuredThreshold() external view returns (uint256);

    /// @dev The certificate-key fingerprint registered for `account`.
    function issuerFingerprint(address account) external view returns (bytes32);

    /// @dev Whether `fingerprint` belongs to an account that is active with the ISSUER role.
    function isIssuerFingerprint(bytes32 fingerprint) external view returns (bool);

    /// @dev Whether a non-member account is allowed through governance or the constructor.
    function isAccountAllowed(address account) external view returns (bool);

    /// @dev Besu account permissioning: whether `sender` may send a transaction.
    function transactionAllowed(
        address sender,
        address target,
        uint256 value,
        uint256 gasPrice,
        uint256 gasLimit,
        bytes calldata payload
    ) external view returns (bool);
}
