"""M-of-N consortium governance through the ConsortiumRegistry: proposals, votes, members."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from trace_sdk.client.contracts import contract_at, role_mask, role_names
from trace_sdk.client.revert import decode_revert
from trace_sdk.client.transactions import TransactionSender
from trace_sdk.exceptions import ChainError

__all__ = ["PROPOSAL_KINDS", "PROPOSAL_STATES", "GovernanceClient", "MemberInfo", "ProposalInfo"]

PROPOSAL_KINDS = (
    "AddMember",
    "RemoveMember",
    "SetRoles",
    "RotateKey",
    "SetThreshold",
    "SetIssuerFingerprint",
    "SetAccountAllowed",
)
PROPOSAL_STATES = ("Active", "Executed", "Expired")

Roles = int | str | Iterable[str]


@dataclass(frozen=True)
class MemberInfo:
    """One registry entry (removed and rotated-away accounts included, with ``active`` False)."""

    address: str
    name: str
    code: str
    roles: list[str]
    """Role names among MEMBER, REGULATOR, ISSUER."""
    active: bool
    identity: int
    """Stable member id shared by rotated keys."""
    successor: str | None
    """The account this key was rotated to, if any."""


@dataclass(frozen=True)
class ProposalInfo:
    """A governance proposal with its derived state and the votes of still-active members."""

    id: int
    kind: str
    state: str
    proposer: str
    created_at_block: int
    expires_at_block: int
    account: str | None
    new_account: str | None
    roles: list[str]
    threshold: int
    allowed: bool
    fingerprint: str | None
    name: str
    code: str
    votes_for: int
    votes_against: int


def _fingerprint_bytes(fingerprint_hex: str) -> bytes:
    """32 bytes from ``0x``-hex, bare hex or colon-separated hex (``AB:CD:...``)."""
    text = fingerprint_hex.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"fingerprint {fingerprint_hex!r} is not hex") from None
    if len(raw) != 32:
        raise ValueError(f"a SHA-256 fingerprint has 32 bytes, got {len(raw)}")
    return raw


def _address_or_none(address: str) -> str | None:
    """None for the zero address."""
    return None if int(address, 16) == 0 else Web3.to_checksum_address(address)


class GovernanceClient:
    """Propose, vote and read the consortium through one member key."""

    def __init__(
        self, rpc_url: str, private_key: str, registry_address: str, *, w3: Web3 | None = None
    ) -> None:
        self.w3 = w3 or Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.registry = contract_at(self.w3, "ConsortiumRegistry", registry_address)
        self.sender = TransactionSender(self.w3, private_key)

    @property
    def address(self) -> str:
        """The account this client signs with."""
        return self.sender.address

    # -- proposals -------------------------------------------------------------------------------
    def propose_add_member(self, address: str, name: str, code: str, roles: Roles) -> int:
        """Propose adding ``address``; returns the proposal id (your YES vote is counted)."""
        call = self.registry.functions.proposeAddMember(
            Web3.to_checksum_address(address), name, code, role_mask(roles)
        )
        return self._propose(call)

    def propose_remove_member(self, address: str) -> int:
        """Propose deactivating ``address``; returns the proposal id."""
        return self._propose(self.registry.functions.proposeRemoveMember(Web3.to_checksum_address(address)))

    def propose_roles(self, address: str, roles: Roles) -> int:
        """Propose replacing the roles of ``address``; returns the proposal id."""
        call = self.registry.functions.proposeSetRoles(Web3.to_checksum_address(address), role_mask(roles))
        return self._propose(call)

    def propose_rotate_key(self, old: str, new: str) -> int:
        """Propose moving a member from key ``old`` to the fresh key ``new``; returns the proposal id."""
        call = self.registry.functions.proposeRotateKey(
            Web3.to_checksum_address(old), Web3.to_checksum_address(new)
        )
        return self._propose(call)

    def propose_threshold(self, n: int) -> int:
        """Propose an explicit threshold ``n`` (0 = majority of active members); returns the proposal id."""
        if n < 0:
            raise ValueError("the threshold cannot be negative")
        return self._propose(self.registry.functions.proposeSetThreshold(n))

    def propose_issuer_fingerprint(self, address: str, fingerprint_hex: str) -> int:
        """Propose the SHA-256 certificate fingerprint of the ISSUER ``address``; returns the proposal id."""
        call = self.registry.functions.proposeSetIssuerFingerprint(
            Web3.to_checksum_address(address), _fingerprint_bytes(fingerprint_hex)
        )
        return self._propose(call)

    def propose_account_allowed(self, address: str, allowed: bool = True) -> int:
        """Propose allowing (or disallowing) a non-member account to transact; returns the proposal id."""
        call = self.registry.functions.proposeSetAccountAllowed(Web3.to_checksum_address(address), allowed)
        return self._propose(call)

    def vote(self, proposal_id: int, support: bool = True) -> TxReceipt:
        """Vote on a proposal; the YES vote that reaches the threshold executes it."""
        return self.sender.transact(self.registry.functions.vote(proposal_id, support))

    def execute(self, proposal_id: int) -> TxReceipt:
        """Execute an open proposal that already has enough YES votes (e.g. after a threshold change)."""
        return self.sender.transact(self.registry.functions.execute(proposal_id))

    # -- reads -----------------------------------------------------------------------------------
    def members(self) -> list[MemberInfo]:
        """Every account ever added, in order, with its current entry."""
        addresses = self._call(self.registry.functions.memberAddresses())
        return [self.member(address) for address in addresses]

    def member(self, address: str) -> MemberInfo:
        """The entry of ``address`` (identity 0 and inactive if unknown)."""
        checksum = Web3.to_checksum_address(address)
        identity, roles, active, successor, name, code = self._call(self.registry.functions.member(checksum))
        return MemberInfo(
            address=checksum,
            name=name,
            code=code,
            roles=role_names(roles),
            active=bool(active),
            identity=int(identity),
            successor=_address_or_none(successor),
        )

    def proposals(self) -> list[ProposalInfo]:
        """Every proposal, oldest first."""
        count = int(self._call(self.registry.functions.proposalCount()))
        return [self.proposal(i) for i in range(1, count + 1)]

    def proposal(self, proposal_id: int) -> ProposalInfo:
        """One proposal with its derived state and live vote counts."""
        fn = self.registry.functions
        p = self._call(fn.proposal(proposal_id))
        state = int(self._call(fn.proposalState(proposal_id)))
        votes_for, votes_against = self._call(fn.proposalVotes(proposal_id))
        (kind, proposer, created, expires, _executed, account, new_account, roles, allowed, threshold,
         fingerprint, name, code) = p
        return ProposalInfo(
            id=proposal_id,
            kind=PROPOSAL_KINDS[kind],
            state=PROPOSAL_STATES[state],
            proposer=Web3.to_checksum_address(proposer),
            created_at_block=int(created),
            expires_at_block=int(expires),
            account=_address_or_none(account),
            new_account=_address_or_none(new_account),
            roles=role_names(roles),
            threshold=int(threshold),
            allowed=bool(allowed),
            fingerprint=None if int.from_bytes(fingerprint, "big") == 0 else bytes(fingerprint).hex(),
            name=name,
            code=code,
            votes_for=int(votes_for),
            votes_against=int(votes_against),
        )

    def proposal_state(self, proposal_id: int) -> str:
        """``Active``, ``Executed`` or ``Expired``."""
        return PROPOSAL_STATES[int(self._call(self.registry.functions.proposalState(proposal_id)))]

    def proposal_executed(self, proposal_id: int) -> bool:
        """Whether the proposal was executed."""
        return self.proposal_state(proposal_id) == "Executed"

    def has_voted(self, proposal_id: int, address: str | None = None) -> bool:
        """Whether the member behind ``address`` (default: this client) voted on the proposal."""
        account = Web3.to_checksum_address(address or self.address)
        return bool(self._call(self.registry.functions.hasVoted(proposal_id, account)))

    def threshold(self) -> int:
        """The effective threshold (YES votes needed)."""
        return int(self._call(self.registry.functions.threshold()))

    def issuer_fingerprint(self, address: str) -> str | None:
        """The registered fingerprint of ``address`` as lowercase hex without ``0x``, or None."""
        raw = self._call(self.registry.functions.issuerFingerprint(Web3.to_checksum_address(address)))
        return None if int.from_bytes(raw, "big") == 0 else bytes(raw).hex()

    # -- helpers ---------------------------------------------------------------------------------
    def _propose(self, call: Any) -> int:
        """Send a propose* call and return the id from its ProposalCreated event."""
        receipt = self.sender.transact(call)
        events = self.registry.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise ChainError(f"no ProposalCreated event in {receipt['transactionHash'].to_0x_hex()}")
        return int(events[0]["args"]["proposalId"])

    def _call(self, call: Any) -> Any:
        """A read-only call with reverts decoded."""
        try:
            return call.call()
        except Exception as exc:
            raise decode_revert(exc) from exc
