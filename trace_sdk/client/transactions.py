"""Build, sign, send and confirm transactions from one private key, with reverts decoded before sending."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxParams, TxReceipt

from trace_sdk.client.revert import decode_revert
from trace_sdk.exceptions import ChainError

__all__ = ["TransactionSender"]

_DEFAULT_TIP_WEI = Web3.to_wei(1, "gwei")


class TransactionSender:
    """Signs locally with ``private_key`` and sends raw transactions; one instance per account.

    Gas is estimated first, so a call that would revert raises the decoded ContractRevertError without
    spending anything. Fees are EIP-1559 when the latest block has a base fee and legacy otherwise (a Besu
    network with ``--min-gas-price=0`` simply gets zero fees).
    """

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        *,
        gas_multiplier: float = 1.2,
        gas_margin: int = 5_000,
        receipt_timeout_s: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.gas_multiplier = gas_multiplier
        self.gas_margin = gas_margin
        self.receipt_timeout_s = receipt_timeout_s
        self._chain_id: int | None = None

    @property
    def address(self) -> str:
        """The checksummed sender address."""
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        """The chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def next_nonce(self) -> int:
        """The next nonce, counting transactions still in the pool."""
        return int(self.w3.eth.get_transaction_count(self.account.address, "pending"))

    def fee_fields(self, bump: float = 1.0) -> dict[str, int]:
        """EIP-1559 ``maxFeePerGas``/``maxPriorityFeePerGas`` or legacy ``gasPrice``, times ``bump``."""
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(int(self.w3.eth.gas_price) * bump)}
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # not every node implements eth_maxPriorityFeePerGas
            tip = 0 if base_fee == 0 else _DEFAULT_TIP_WEI
        max_fee = int((2 * int(base_fee) + tip) * bump)
        return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": int(tip * bump)}

    def estimate_gas(self, tx: TxParams) -> int:
        """Estimate gas for ``tx``; a revert raises the decoded ContractRevertError."""
        try:
            return int(self.w3.eth.estimate_gas(tx))
        except Exception as exc:
            raise decode_revert(exc) from exc

    def build(self, call: Any = None, *, tx: TxParams | None = None, nonce: int | None = None) -> TxParams:
        """A complete transaction for a contract function/constructor ``call`` or a partial ``tx`` dict."""
        params: dict[str, Any] = {"value": 0, **self.fee_fields(), **(tx or {}), "from": self.account.address}
        fixed_gas = "gas" in params
        if call is not None:
            try:  # web3 estimates the gas here, so a revert surfaces before anything is signed
                params = dict(call.build_transaction(params))
            except Exception as exc:
                raise decode_revert(exc) from exc
            gas = int(params["gas"])
        else:
            gas = int(params["gas"]) if fixed_gas else self.estimate_gas(params)  # type: ignore[arg-type]
        params["gas"] = gas if fixed_gas else int(gas * self.gas_multiplier) + self.gas_margin
        params["chainId"] = self.chain_id
        params["nonce"] = self.next_nonce() if nonce is None else nonce
        return params  # type: ignore[return-value]

    def sign(self, tx: TxParams) -> tuple[HexBytes, bytes]:
        """Sign ``tx``; returns (transaction hash, raw signed bytes)."""
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        return HexBytes(signed.hash), bytes(signed.raw_transaction)

    def send_raw(self, raw: bytes) -> HexBytes:
        """Broadcast signed bytes; node rejections are decoded into TraceErrors."""
        try:
            return HexBytes(self.w3.eth.send_raw_transaction(raw))
        except Exception as exc:
            raise decode_revert(exc) from exc

    def wait(self, tx_hash: HexBytes, tx: TxParams | None = None) -> TxReceipt:
        """Wait for the receipt; a mined revert is replayed with eth_call to decode its reason."""
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout_s)
        if receipt["status"] != 1:
            if tx is not None:
                replay = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
                try:
                    self.w3.eth.call(replay, block_identifier=receipt["blockNumber"])  # type: ignore[arg-type]
                except Exception as exc:
                    raise decode_revert(exc) from exc
            raise ChainError(f"transaction {tx_hash.to_0x_hex()} reverted in block {receipt['blockNumber']}")
        return receipt

    def transact(
        self, call: Any = None, *, tx: TxParams | None = None, nonce: int | None = None
    ) -> TxReceipt:
        """Build, sign, send and confirm a contract ``call`` (function or constructor) or a plain ``tx``."""
        params = self.build(call, tx=tx, nonce=nonce)
        tx_hash, raw = self.sign(params)
        self.send_raw(raw)
        return self.wait(tx_hash, params)

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> TxReceipt:
        """Deploy a contract; the receipt's ``contractAddress`` is the new address."""
        constructor = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args)
        return self.transact(constructor)
