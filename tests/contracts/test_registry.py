"""ConsortiumRegistry: membership, history, governance rules and every revert path, on a real Anvil."""

from __future__ import annotations

import pytest
from web3 import Web3
from web3.logs import DISCARD

from chain_node.deploy import MemberSpec, deploy_contracts
from tests.contracts.conftest import AGENCIES, ISSUER, LIFETIME_BLOCKS, MEMBER, REGULATOR, Consortium
from trace_sdk.client.contracts import load_artifact
from trace_sdk.client.governance import GovernanceClient
from trace_sdk.exceptions import ContractRevertError, NotMemberError

FINGERPRINT = "ab" * 32


def _error(excinfo: pytest.ExceptionInfo[ContractRevertError]) -> tuple[str, tuple[object, ...]]:
    return excinfo.value.error_name, excinfo.value.args


# ---------------------------------------------------------------------------------------------- constructor
def test_initial_members_roles_and_events(consortium: Consortium) -> None:
    c = consortium
    reg = c.registry.functions
    assert reg.activeMemberCount().call() == 8
    assert reg.activeRegulatorCount().call() == 1
    assert reg.threshold().call() == 5  # majority of 8
    assert reg.configuredThreshold().call() == 0
    assert reg.proposalLifetimeBlocks().call() == LIFETIME_BLOCKS
    assert reg.memberAddresses().call() == [k.address for k in c.members]
    identities = [reg.identityOf(k.address).call() for k in c.members]
    assert identities == list(range(1, 9))
    assert reg.identityOf(c.strangers[0].address).call() == 0
    assert reg.hasRole(c.regulator.address, REGULATOR).call()
    assert not reg.hasRole(c.members[2].address, REGULATOR).call()
    assert reg.hasRole(c.issuer.address, ISSUER | MEMBER).call()
    assert not reg.hasRole(c.issuer.address, 0).call()  # fail closed
    assert not reg.isActiveMember(c.strangers[0].address).call()
    logs = c.registry.events.MemberAdded().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["account"], e["args"]["name"], e["args"]["code"], e["args"]["roles"]) for e in logs] == [
        (k.address, n, code, r) for k, (n, code, r) in zip(c.members, AGENCIES, strict=True)
    ]
    allowance = c.registry.events.AccountAllowanceSet().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["account"], e["args"]["allowed"]) for e in allowance] == [(c.allowed.address, True)]
    for k in c.members:
        assert reg.wasMemberAt(k.address, c.deployment.deployment_block).call()
        assert not reg.wasMemberAt(k.address, c.deployment.deployment_block - 1).call()


@pytest.mark.parametrize(
    ("members", "kwargs", "expected"),
    [
        ([], {}, "ConsortiumRegistryNoActiveMembers"),
        ([(0, MEMBER), (1, MEMBER)], {}, "ConsortiumRegistryNoActiveRegulator"),
        ([(0, REGULATOR)], {}, "ConsortiumRegistryNoActiveMembers"),
        ([(0, MEMBER | REGULATOR), (1, MEMBER)], {"threshold": 3}, "ConsortiumRegistryUnreachableThreshold"),
        ([(0, MEMBER | REGULATOR), (0, MEMBER)], {}, "ConsortiumRegistryAccountExists"),
        ([(0, MEMBER | REGULATOR), (1, 8)], {}, "ConsortiumRegistryInvalidRoles"),
        ([(0, MEMBER | REGULATOR)], {"proposal_lifetime_blocks": 0}, "ConsortiumRegistryInvalidProposalLifetime"),
    ],
)
def test_constructor_rejects_broken_consortia(
    consortium: Consortium, members: list[tuple[int, int]], kwargs: dict[str, int], expected: str
) -> None:
    c = consortium
    artifact = load_artifact("ConsortiumRegistry")
    accounts = [c.strangers[i].address for i, _ in members]
    with pytest.raises(ContractRevertError) as excinfo:
        c.sender(c.deployer).deploy(
            artifact["abi"],
            artifact["bytecode"],
            accounts,
            [f"agency {i}" for i, _ in members],
            [f"A{i}" for i, _ in members],
            [roles for _, roles in members],
            kwargs.get("threshold", 0),
            kwargs.get("proposal_lifetime_blocks", LIFETIME_BLOCKS),
            [],
        )
    assert excinfo.value.error_name == expected


def test_constructor_rejects_mismatched_lists(consortium: Consortium) -> None:
    c = consortium
    artifact = load_artifact("ConsortiumRegistry")
    with pytest.raises(ContractRevertError) as excinfo:
        c.sender(c.deployer).deploy(
            artifact["abi"], artifact["bytecode"], [c.strangers[0].address], ["a", "b"], ["A"], [3], 0, 10, []
        )
    assert _error(excinfo) == ("ConsortiumRegistryInitialMembersMismatch", (1, 2, 1, 1))


def test_constructor_zero_address_and_allowed_accounts(consortium: Consortium) -> None:
    c = consortium
    zero = "0x" + "00" * 20
    with pytest.raises(ContractRevertError) as excinfo:
        deploy_contracts(c.w3, c.deployer.private_key, [MemberSpec(zero, "x", "X", MEMBER | REGULATOR)])
    assert _error(excinfo) == ("ConsortiumRegistryInvalidAccount", (zero,))
    single = [MemberSpec(c.strangers[0].address, "x", "X", ["MEMBER", "REGULATOR"])]
    with pytest.raises(ContractRevertError) as excinfo:
        deploy_contracts(c.w3, c.deployer.private_key, single, allowed_accounts=[zero])
    assert excinfo.value.error_name == "ConsortiumRegistryInvalidAccount"


# ---------------------------------------------------------------------------------------------- governance
def test_governance_client_end_to_end(consortium: Consortium) -> None:
    c = consortium
    newcomer = c.strangers[0]
    proposer = c.gov(c.members[2])
    proposal_id = proposer.propose_add_member(newcomer.address, "上海市水务局", "SHWATER", ["MEMBER", "ISSUER"])
    assert proposal_id == 1
    info = proposer.proposal(proposal_id)
    assert (info.kind, info.state, info.votes_for, info.votes_against) == ("AddMember", "Active", 1, 0)
    assert (info.account, info.name, info.code, info.roles) == (
        newcomer.address, "上海市水务局", "SHWATER", ["MEMBER", "ISSUER"]
    )
    assert info.expires_at_block == info.created_at_block + LIFETIME_BLOCKS
    c.gov(c.members[3]).vote(proposal_id, support=False)
    for voter in c.members[4:7]:
        c.gov(voter).vote(proposal_id)
    assert proposer.proposal_state(proposal_id) == "Active"
    assert newcomer.address not in [m.address for m in proposer.members()]
    receipt = c.gov(c.members[7]).vote(proposal_id)  # the 5th YES executes it
    (executed,) = c.registry.events.ProposalExecuted().process_receipt(receipt, errors=DISCARD)
    assert executed["args"]["proposalId"] == proposal_id
    added = c.registry.events.MemberAdded().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (added["account"], added["roles"]) == (newcomer.address, MEMBER | ISSUER)
    assert proposer.proposal_executed(proposal_id)
    member = proposer.members()[-1]
    assert (member.address, member.name, member.code, member.roles, member.active, member.identity) == (
        newcomer.address, "上海市水务局", "SHWATER", ["MEMBER", "ISSUER"], True, 9
    )
    assert proposer.threshold() == 5  # majority of 9
    assert [p.state for p in proposer.proposals()] == ["Executed"]
    assert proposer.proposals()[0].votes_against == 1
    # The newcomer is a voter now.
    new_id = c.gov(newcomer).propose_threshold(3)
    assert c.gov(newcomer).has_voted(new_id)


def test_vote_on_executed_proposal_reverts(consortium: Consortium) -> None:
    c = consortium
    proposal_id = c.pass_proposal(c.members[0], lambda g: g.propose_threshold(2))
    assert c.registry.functions.threshold().call() == 2
    late = next(k for k in c.members if not c.gov(k).has_voted(proposal_id))
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(late).vote(proposal_id)
    assert _error(excinfo) == (
        "ConsortiumRegistryUnexpectedProposalState", (proposal_id, 1, "0x" + "00" * 31 + "01")
    )
    assert "(1, Executed, Active)" in str(excinfo.value)


def test_double_vote_reverts(consortium: Consortium) -> None:
    c = consortium
    proposal_id = c.gov(c.members[0]).propose_threshold(3)
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[0]).vote(proposal_id)  # the proposer already voted YES by proposing
    assert _error(excinfo) == ("ConsortiumRegistryAlreadyVoted", (proposal_id, c.members[0].address))
    c.gov(c.members[1]).vote(proposal_id, support=False)
    with pytest.raises(ContractRevertError):
        c.gov(c.members[1]).vote(proposal_id, support=True)
    assert c.gov(c.members[1]).proposal(proposal_id).votes_against == 1


def test_non_members_cannot_vote_or_propose(consortium: Consortium) -> None:
    c = consortium
    proposal_id = c.gov(c.members[0]).propose_threshold(3)
    stranger = c.gov(c.strangers[0])
    with pytest.raises(NotMemberError) as excinfo:
        stranger.vote(proposal_id)
    assert isinstance(excinfo.value, ContractRevertError)
    assert _error(excinfo) == ("ConsortiumRegistryNotMember", (c.strangers[0].address,))  # type: ignore[arg-type]
    assert str(excinfo.value) == (
        f"ConsortiumRegistryNotMember({c.strangers[0].address}): the account is not an active consortium member"
    )
    with pytest.raises(NotMemberError):
        stranger.propose_add_member(c.strangers[0].address, "me", "ME", "MEMBER")
    with pytest.raises(NotMemberError):
        c.gov(c.allowed).propose_threshold(1)  # allowed to transact, but not a member
    with pytest.raises(ContractRevertError) as excinfo:
        stranger.execute(proposal_id)
    assert excinfo.value.error_name == "ConsortiumRegistryNotMember"


def test_expired_proposal_cannot_be_voted(consortium: Consortium) -> None:
    c = consortium
    gov = c.gov(c.members[0])
    proposal_id = gov.propose_threshold(3)
    expires = gov.proposal(proposal_id).expires_at_block
    c.mine(expires - c.w3.eth.block_number - 1)
    c.gov(c.members[1]).vote(proposal_id)  # mined in block `expires`: still Active
    assert c.w3.eth.block_number == expires
    assert gov.proposal_state(proposal_id) == "Active"
    c.mine(1)
    assert gov.proposal_state(proposal_id) == "Expired"
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[2]).vote(proposal_id)
    assert _error(excinfo)[0] == "ConsortiumRegistryUnexpectedProposalState"
    assert _error(excinfo)[1][1] == 2  # Expired
    assert "Expired" in str(excinfo.value)


def test_nonexistent_proposal(consortium: Consortium) -> None:
    c = consortium
    for proposal_id in (0, 1, 99):
        with pytest.raises(ContractRevertError) as excinfo:
            c.gov(c.members[0]).vote(proposal_id)
        assert _error(excinfo) == ("ConsortiumRegistryNonexistentProposal", (proposal_id,))
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[0]).proposal_state(5)
    assert excinfo.value.error_name == "ConsortiumRegistryNonexistentProposal"


def test_several_open_proposals_execute_independently(consortium: Consortium) -> None:
    c = consortium
    g = [c.gov(k) for k in c.members]
    p_allow = g[0].propose_account_allowed(c.strangers[0].address)
    p_roles = g[1].propose_roles(c.members[2].address, ["MEMBER", "REGULATOR"])
    p_thresh = g[2].propose_threshold(4)
    assert [p.state for p in g[0].proposals()] == ["Active"] * 3
    for voter in (3, 4, 5, 6):  # YES on the roles proposal: 5 votes executes it
        g[voter].vote(p_roles)
    for voter in (3, 4):
        g[voter].vote(p_allow)
        g[voter].vote(p_thresh, support=False)
    assert [g[0].proposal_state(p) for p in (p_allow, p_roles, p_thresh)] == ["Active", "Executed", "Active"]
    assert c.registry.functions.activeRegulatorCount().call() == 2
    g[5].vote(p_allow)
    g[6].vote(p_allow)
    assert g[0].proposal_executed(p_allow)
    assert c.registry.functions.isAccountAllowed(c.strangers[0].address).call()
    assert g[0].proposal(p_thresh).votes_against == 2
    assert c.registry.functions.threshold().call() == 5


def test_remove_member_keeps_history_and_anchors(consortium: Consortium) -> None:
    c = consortium
    target = c.members[7]
    receipt = c.send(target, c.anchor.functions.anchorBatch(b"\x11" * 32, 3, 1))
    anchor_block = receipt["blockNumber"]
    proposal_id = c.pass_proposal(c.members[0], lambda g: g.propose_remove_member(target.address))
    removed_block = c.w3.eth.block_number
    reg = c.registry.functions
    assert not reg.isActiveMember(target.address).call()
    assert reg.activeMemberCount().call() == 7
    assert reg.threshold().call() == 4  # majority of 7
    assert reg.wasMemberAt(target.address, anchor_block).call()
    assert reg.wasMemberAt(target.address, removed_block).call()  # ranges are inclusive
    c.mine(1)
    assert not reg.wasMemberAt(target.address, removed_block + 1).call()
    assert reg.membershipHistory(target.address).call() == [(c.deployment.deployment_block, removed_block)]
    assert c.gov(c.members[0]).member(target.address).active is False
    assert target.address in reg.memberAddresses().call()
    with pytest.raises(NotMemberError) as excinfo:
        c.send(target, c.anchor.functions.anchorBatch(b"\x12" * 32, 3, 1))
    assert excinfo.value.error_name == "TraceAnchorNotMember"  # type: ignore[attr-defined]
    assert c.anchor.functions.batch(b"\x11" * 32).call()[0] == target.address  # earlier anchor kept
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[0]).propose_remove_member(target.address)
    assert _error(excinfo) == ("ConsortiumRegistryInactiveAccount", (target.address,))
    with pytest.raises(ContractRevertError) as excinfo:  # accounts are never reused
        c.gov(c.members[0]).propose_add_member(target.address, "again", "AGAIN", "MEMBER")
    assert excinfo.value.error_name == "ConsortiumRegistryAccountExists"
    logs = c.registry.events.MemberRemoved().get_logs(from_block=c.deployment.deployment_block)
    assert [e["args"]["account"] for e in logs] == [target.address]
    assert proposal_id == 1


def test_votes_of_removed_members_no_longer_count(consortium: Consortium) -> None:
    c = consortium
    g = [c.gov(k) for k in c.members]
    pending = g[7].propose_threshold(2)
    g[6].vote(pending)
    assert g[0].proposal(pending).votes_for == 2
    c.pass_proposal(c.members[0], lambda gov: gov.propose_remove_member(c.members[7].address))
    assert c.registry.functions.threshold().call() == 4  # majority of 7
    assert g[0].proposal(pending).votes_for == 1  # members[7]'s YES is gone with it
    g[1].vote(pending)
    g[2].vote(pending)
    assert g[0].proposal_state(pending) == "Active"  # 3 valid YES (4 cast) < 4
    g[3].vote(pending)
    assert g[0].proposal_executed(pending)


def test_removing_the_last_regulator_is_impossible(consortium: Consortium) -> None:
    c = consortium
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[2]).propose_remove_member(c.regulator.address)
    assert excinfo.value.error_name == "ConsortiumRegistryNoActiveRegulator"
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[2]).propose_roles(c.regulator.address, ["MEMBER"])
    assert excinfo.value.error_name == "ConsortiumRegistryNoActiveRegulator"
    # Two removals, each valid alone: the vote that would execute the second one reverts.
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(c.members[2].address, MEMBER | REGULATOR))
    first = c.gov(c.members[3]).propose_remove_member(c.regulator.address)
    second = c.gov(c.members[3]).propose_remove_member(c.members[2].address)
    for voter in c.members[4:8]:
        c.gov(voter).vote(first)
    assert c.gov(c.members[3]).proposal_executed(first)
    for voter in c.members[4:6]:
        c.gov(voter).vote(second)
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[6]).vote(second)  # this would be the executing YES (4 of 7)
    assert str(excinfo.value) == "ConsortiumRegistryNoActiveRegulator(): the change would leave no active regulator"
    assert c.gov(c.members[1]).proposal_state(second) == "Active"
    assert c.registry.functions.activeRegulatorCount().call() == 1


def test_removing_the_last_member_is_impossible(consortium: Consortium) -> None:
    c = consortium
    solo_key = c.strangers[0]
    solo = deploy_contracts(
        c.w3, c.deployer.private_key, [MemberSpec(solo_key.address, "solo", "SOLO", MEMBER | REGULATOR)]
    )
    gov = GovernanceClient(c.rpc_url, solo_key.private_key, solo.registry, w3=c.w3)
    assert gov.threshold() == 1
    with pytest.raises(ContractRevertError) as excinfo:
        gov.propose_remove_member(solo_key.address)
    assert _error(excinfo) == ("ConsortiumRegistryNoActiveMembers", ())
    with pytest.raises(ContractRevertError) as excinfo:
        gov.propose_roles(solo_key.address, "REGULATOR")
    assert excinfo.value.error_name == "ConsortiumRegistryNoActiveMembers"
    # With threshold 1 a proposal executes in the proposing transaction.
    proposal_id = gov.propose_add_member(c.strangers[1].address, "second", "TWO", "MEMBER")
    assert gov.proposal_executed(proposal_id)
    assert gov.threshold() == 2


def test_threshold_must_stay_reachable(consortium: Consortium) -> None:
    c = consortium
    g = c.gov(c.members[0])
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_threshold(9)
    assert _error(excinfo) == ("ConsortiumRegistryUnreachableThreshold", (9, 8))
    c.pass_proposal(c.members[0], lambda gov: gov.propose_threshold(7))
    assert g.threshold() == 7
    assert c.registry.functions.configuredThreshold().call() == 7
    # Removing one member keeps 7 reachable; removing a second one would not.
    first = g.propose_remove_member(c.members[7].address)
    second = g.propose_remove_member(c.members[6].address)
    for voter in c.members[1:7]:
        c.gov(voter).vote(first)
    assert g.proposal_executed(first)
    for voter in c.members[1:6]:
        c.gov(voter).vote(second)
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[6]).vote(second)  # the 7th YES would execute it
    assert _error(excinfo) == ("ConsortiumRegistryUnreachableThreshold", (7, 6))
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_remove_member(c.members[5].address)
    assert excinfo.value.error_name == "ConsortiumRegistryUnreachableThreshold"
    # Back to a dynamic majority (threshold 0): the stuck removal can now be executed.
    c.pass_proposal(c.members[0], lambda gov: gov.propose_threshold(0))
    assert g.threshold() == 4
    changes = c.registry.events.ThresholdChanged().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["previousThreshold"], e["args"]["newThreshold"]) for e in changes] == [(0, 7), (7, 0)]
    g.execute(second)
    assert g.proposal_executed(second)
    assert c.registry.functions.activeMemberCount().call() == 6


def test_execute_requires_enough_votes(consortium: Consortium) -> None:
    c = consortium
    g = c.gov(c.members[0])
    proposal_id = g.propose_account_allowed(c.strangers[0].address)
    with pytest.raises(ContractRevertError) as excinfo:
        g.execute(proposal_id)
    assert _error(excinfo) == ("ConsortiumRegistryThresholdNotReached", (proposal_id, 1, 5))


def test_invalid_proposals_are_rejected_up_front(consortium: Consortium) -> None:
    c = consortium
    g = c.gov(c.members[0])
    zero = "0x" + "00" * 20
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_add_member(zero, "z", "Z", "MEMBER")
    assert excinfo.value.error_name == "ConsortiumRegistryInvalidAccount"
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_add_member(c.members[3].address, "dup", "DUP", "MEMBER")
    assert excinfo.value.error_name == "ConsortiumRegistryAccountExists"
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[0], c.registry.functions.proposeSetRoles(c.members[3].address, 9))
    assert _error(excinfo) == ("ConsortiumRegistryInvalidRoles", (9,))
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_rotate_key(c.strangers[0].address, c.strangers[1].address)
    assert excinfo.value.error_name == "ConsortiumRegistryInactiveAccount"
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_rotate_key(c.members[3].address, c.members[4].address)
    assert excinfo.value.error_name == "ConsortiumRegistryAccountExists"
    with pytest.raises(ContractRevertError) as excinfo:
        g.propose_account_allowed(zero)
    assert excinfo.value.error_name == "ConsortiumRegistryInvalidAccount"
    with pytest.raises(ValueError):
        g.propose_roles(c.members[3].address, ["AUDITOR"])
    assert c.registry.functions.proposalCount().call() == 0


def test_set_roles_updates_counters_and_history(consortium: Consortium) -> None:
    c = consortium
    target = c.members[5]
    reg = c.registry.functions
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(target.address, ["REGULATOR"]))
    dropped = c.w3.eth.block_number
    assert reg.activeMemberCount().call() == 7
    assert reg.activeRegulatorCount().call() == 2
    assert reg.hasRole(target.address, REGULATOR).call()
    assert not reg.isActiveMember(target.address).call()
    with pytest.raises(NotMemberError):
        c.gov(target).propose_threshold(2)  # governance belongs to MEMBERs
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(target.address, MEMBER | REGULATOR))
    restored = c.w3.eth.block_number
    assert reg.membershipHistory(target.address).call() == [
        (c.deployment.deployment_block, dropped), (restored, 2**64 - 1)
    ]
    events = c.registry.events.MemberRolesChanged().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["previousRoles"], e["args"]["newRoles"]) for e in events] == [(1, 2), (2, 3)]


def test_key_rotation_keeps_identity_history_and_votes(consortium: Consortium) -> None:
    c = consortium
    old, new = c.members[2], c.strangers[0]
    reg = c.registry.functions
    pending = c.gov(old).propose_threshold(3)  # old key votes YES before the rotation
    before = c.w3.eth.block_number
    c.pass_proposal(c.members[0], lambda g: g.propose_rotate_key(old.address, new.address))
    rotated = c.w3.eth.block_number
    c.mine(1)
    assert reg.identityOf(new.address).call() == reg.identityOf(old.address).call() == 3
    assert reg.accountOf(3).call() == new.address
    info_old, info_new = c.gov(c.members[0]).member(old.address), c.gov(c.members[0]).member(new.address)
    assert (info_new.name, info_new.code, info_new.roles, info_new.active) == (*AGENCIES[2][:2], ["MEMBER"], True)
    assert (info_old.active, info_old.successor, info_new.successor) == (False, new.address, None)
    assert reg.wasMemberAt(old.address, before).call()
    assert not reg.wasMemberAt(old.address, rotated + 1).call()
    assert reg.wasMemberAt(new.address, rotated + 1).call()
    assert not reg.wasMemberAt(new.address, before).call()
    assert reg.activeMemberCount().call() == 8
    assert reg.memberAddresses().call()[-1] == new.address
    logs = c.registry.events.MemberKeyRotated().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["previousAccount"], e["args"]["newAccount"]) for e in logs] == [(old.address, new.address)]
    # The vote cast with the old key stays with the identity: no second vote with the new key.
    assert c.gov(new).has_voted(pending)
    assert c.gov(new).proposal(pending).votes_for == 1
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(new).vote(pending)
    assert excinfo.value.error_name == "ConsortiumRegistryAlreadyVoted"
    with pytest.raises(NotMemberError):
        c.gov(old).vote(pending)
    with pytest.raises(ContractRevertError) as excinfo:  # a retired key can never come back
        c.gov(c.members[0]).propose_rotate_key(new.address, old.address)
    assert excinfo.value.error_name == "ConsortiumRegistryAccountExists"


def test_issuer_fingerprint_rules(consortium: Consortium) -> None:
    c = consortium
    reg = c.registry.functions
    fp = bytes.fromhex(FINGERPRINT)
    assert not reg.isIssuerFingerprint(fp).call()
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[0]).propose_issuer_fingerprint(c.members[3].address, FINGERPRINT)
    assert _error(excinfo) == ("ConsortiumRegistryMissingRole", (c.members[3].address, ISSUER))
    c.pass_proposal(c.members[0], lambda g: g.propose_issuer_fingerprint(c.issuer.address, "0x" + FINGERPRINT))
    assert c.gov(c.members[0]).issuer_fingerprint(c.issuer.address) == FINGERPRINT
    assert reg.isIssuerFingerprint(fp).call()
    events = c.registry.events.IssuerFingerprintSet().get_logs(from_block=c.deployment.deployment_block)
    assert [(e["args"]["account"], e["args"]["fingerprint"]) for e in events] == [(c.issuer.address, fp)]
    # Another issuer cannot take a fingerprint that is in use.
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(c.members[3].address, "MEMBER,ISSUER"))
    with pytest.raises(ContractRevertError) as excinfo:
        c.gov(c.members[0]).propose_issuer_fingerprint(c.members[3].address, FINGERPRINT)
    assert _error(excinfo) == ("ConsortiumRegistryFingerprintInUse", ("0x" + FINGERPRINT, c.issuer.address))
    # Rotation moves the fingerprint with the identity.
    c.pass_proposal(c.members[0], lambda g: g.propose_rotate_key(c.issuer.address, c.strangers[0].address))
    assert c.gov(c.members[0]).issuer_fingerprint(c.strangers[0].address) == FINGERPRINT
    assert c.gov(c.members[0]).issuer_fingerprint(c.issuer.address) is None
    assert reg.isIssuerFingerprint(fp).call()
    # Losing the ISSUER role switches the fingerprint off (fail closed) ...
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(c.strangers[0].address, "MEMBER"))
    assert not reg.isIssuerFingerprint(fp).call()
    # ... and frees it for another issuer.
    c.pass_proposal(c.members[0], lambda g: g.propose_issuer_fingerprint(c.members[3].address, FINGERPRINT))
    assert reg.isIssuerFingerprint(fp).call()
    assert c.gov(c.members[0]).issuer_fingerprint(c.strangers[0].address) is None  # the former holder lost it
    c.pass_proposal(c.members[0], lambda g: g.propose_remove_member(c.members[3].address))
    assert not reg.isIssuerFingerprint(fp).call()
    assert not reg.isIssuerFingerprint(b"\x00" * 32).call()
    with pytest.raises(ValueError):
        c.gov(c.members[0]).propose_issuer_fingerprint(c.issuer.address, "abcd")


def test_transaction_allowed(consortium: Consortium) -> None:
    c = consortium

    def allowed(address: str) -> bool:
        return bool(c.registry.functions.transactionAllowed(address, c.deployment.anchor, 0, 0, 21000, b"").call())

    assert allowed(c.members[4].address)
    assert allowed(c.allowed.address)  # allowed in the constructor
    assert not allowed(c.strangers[0].address)
    assert not allowed(Web3.to_checksum_address("0x" + "00" * 20))
    c.pass_proposal(c.members[0], lambda g: g.propose_remove_member(c.members[4].address))
    assert not allowed(c.members[4].address)
    c.pass_proposal(c.members[0], lambda g: g.propose_account_allowed(c.strangers[0].address))
    assert allowed(c.strangers[0].address)
    c.pass_proposal(c.members[0], lambda g: g.propose_account_allowed(c.allowed.address, False))
    assert not allowed(c.allowed.address)
    # A regulator-only entry (no MEMBER role) is still an active agency and may transact.
    c.pass_proposal(c.members[0], lambda g: g.propose_roles(c.members[5].address, "REGULATOR"))
    assert allowed(c.members[5].address)
