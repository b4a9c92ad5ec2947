"""`tracechain deploy`: deploy to an existing chain once, seed the demo consortium, register the issuer, exit.

The one-shot counterpart of `tracechain up` for containers: `up` keeps the certificate service running in
the foreground, while this command only prepares the chain named by TRACECHAIN_RPC_URL and the shared data
directory (deployment.json, agency keys, pki/, demo-consortium.json), then returns so that the service
container can start. It is safe to run again: a deployment the chain still holds is reused.

Unlike `up`, the deployer account is passed to the registry's constructor as an allowed non-member account.
On Besu with account permissioning bound to ConsortiumRegistry.transactionAllowed, the registry's creation
switches permissioning on, and the deployer's next transaction (TraceAnchor's creation) must be allowed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from eth_utils import to_checksum_address
from rich.console import Console
from web3 import Web3

from chain_node.provisioning import ProvisioningError, create_address, provision
from chain_node.settings import NodeSettings
from trace_sdk.exceptions import TraceError

__all__ = ["DeployError", "create_address", "main", "run_deploy"]

_CHAIN_WAIT_S = 120.0

DeployError = ProvisioningError


def _wait_for_chain(w3: Web3, rpc_url: str, timeout_s: float) -> int:
    """Poll ``eth_chainId`` until the node answers (bounded); returns the chain id."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return int(w3.eth.chain_id)
        except Exception as exc:  # connection refused while the node starts, HTTP 5xx, …
            last_error = exc
            time.sleep(1.0)
    raise DeployError(f"the chain at {rpc_url} did not answer within {timeout_s:.0f}s: {last_error}")


def run_deploy(
    settings: NodeSettings | None = None,
    *,
    expected_registry: str | None = None,
    service_url: str | None = None,
    console: Console | None = None,
    chain_wait_s: float = _CHAIN_WAIT_S,
) -> int:
    """Deploy (once) to TRACECHAIN_RPC_URL, seed and fund the demo agencies, register the issuer; 0 on success."""
    settings = settings or NodeSettings.from_env()
    log = console or Console()
    try:
        if not settings.rpc_url:
            raise DeployError("`tracechain deploy` needs TRACECHAIN_RPC_URL; `tracechain up` starts its own Anvil")
        try:
            deployer_key = settings.external_deployer_key()
        except ValueError as exc:
            raise DeployError(str(exc)) from None
        expected = to_checksum_address(expected_registry) if expected_registry else None
        rpc_url = settings.rpc_url
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        chain_id = _wait_for_chain(w3, rpc_url, chain_wait_s)
        log.print(f"[green]✓[/] chain {chain_id} reachable at {rpc_url}")
        public_url = service_url or os.environ.get("TRACECHAIN_PUBLIC_URL") or (
            f"http://127.0.0.1:{settings.http_port}"
        )
        provision(
            w3,
            rpc_url=rpc_url,
            deployer_key=deployer_key,
            data_dir=settings.data_dir,
            service_url=public_url.rstrip("/"),
            log=log,
            expected_registry=expected,
        )
    except DeployError as exc:
        log.print(f"[red]✗[/] {exc}")
        return 1
    log.print(f"[green]✓[/] chain prepared; data in {settings.data_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m chain_node.deploy_command [--expect-registry ADDRESS]` (settings from TRACECHAIN_*)."""
    parser = argparse.ArgumentParser(
        prog="tracechain deploy", description="Deploy to TRACECHAIN_RPC_URL once, seed the demo agencies, exit."
    )
    parser.add_argument(
        "--expect-registry",
        metavar="ADDRESS",
        help="refuse to deploy unless ConsortiumRegistry lands at ADDRESS (the nodes' permissioning contract)",
    )
    args = parser.parse_args(argv)
    try:
        return run_deploy(expected_registry=args.expect_registry or None)
    except (TraceError, RuntimeError, ValueError) as exc:  # as `tracechain up` reports them
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
