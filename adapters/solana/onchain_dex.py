"""A venue on chain (Raydium CPMM or Meteora DAMM v2) behind the engine's DEX port.

- **quote**: one `getMultipleAccounts` (the pool, its config, its vaults, the Clock)
  priced with the program's own math; a pool that is missing, disabled, not yet open or
  unreadable is left out with its reason (a `TransientError` naming it), never a crash.
- **plan** (the build step): the wallet must hold what the swap spends, or the order
  fails before anything is sent; the transaction is simulated for its compute units
  (times the headroom) and the priority fee is the recent fees' 75th percentile for the
  pool's accounts, capped.
- **sign**: SOL is wrapped into the wallet's wSOL account before the swap and the
  account closed after it; the transaction is signed on a fresh blockhash and not sent.
- **send**: the signature is looked up first, so a swap that landed is never sent again;
  an expired blockhash is `SwapExpired`; a preflight refusal by a program is final.
- **confirm**: polls the signature, re-sending the same transaction every few seconds,
  until it lands (the receipt is read from the transaction's balances), fails (the
  program's decoded error), or its blockhash's last valid height passes; after
  `confirm_timeout_s` it hands back `SwapPending` and the step asks again later, so a
  worker is never held for the whole life of a blockhash.

Reading the receipt and putting errors in words is `swap_outcome`'s; amounts are
written as `amounts` says.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

import msgspec
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus, TransactionErrorFieldless

from adapters.solana.amounts import ratio, units
from adapters.solana.instructions import (
    close_account,
    compute_budget_instructions,
    create_associated_token_account_idempotent,
    wrap_sol,
)
from adapters.solana.pool_config import ConfiguredPool, PoolBook, PoolConfigError
from adapters.solana.pool_models import PoolLayout, PoolModel, PoolUnavailable, PricedSwap
from adapters.solana.programs import WSOL_MINT, associated_token_address
from adapters.solana.rpc import ChainRpc, PreflightFailed
from adapters.solana.swap_outcome import describe_error, instructions_of, swap_receipt
from adapters.solana.token_layouts import decode_mint, decode_token_account
from domain.curves.errors import ProgramError, ProgramPanic, UnsupportedPool
from domain.errors import NoPool, SwapExpired, SwapPending, SwapRejected, TransientError
from domain.events import Quote
from domain.ports import SignedSwap, SwapPlan, SwapReceipt, SwapTerms

log = logging.getLogger("orderengine.solana")

MAX_COMPUTE_UNITS = 1_400_000
# The fee of one signature, and the rent of the wSOL account a swap opens and closes.
SIGNATURE_FEE_LAMPORTS = 5_000
TOKEN_ACCOUNT_RENT_LAMPORTS = 2_039_280
LAMPORTS_PER_SOL = 10**9


class OnChainPolicy(msgspec.Struct, frozen=True, kw_only=True):
    priority_fee_cap: int  # micro-lamports per compute unit
    priority_fee_floor: int = 0
    compute_unit_headroom: Decimal = Decimal("1.3")
    confirm_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    rebroadcast_interval_s: float = 2.0
    explorer_tx_url: str = "https://explorer.solana.com/tx/{tx_hash}?cluster=devnet"
    # The commitment a landing must reach to count as confirmed (SOLANA_COMMITMENT).
    commitment: str = "confirmed"
    # A quote read more than this many slots behind the newest slot the venue has seen (an
    # RPC node lagging behind its cluster) is stale: the pool is left out of that routing.
    max_slot_lag: int = 150


class OnChainDex:
    def __init__(
        self,
        model: PoolModel,
        rpc: ChainRpc,
        wallet: Keypair,
        book: PoolBook,
        policy: OnChainPolicy,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = model.venue
        self.model = model
        self.rpc = rpc
        self.wallet = wallet
        self.book = book
        self.policy = policy
        self._monotonic = monotonic
        self._sleep = sleep
        self._layouts: dict[Pubkey, tuple[ConfiguredPool, PoolLayout]] = {}
        self._decimals: dict[Pubkey, int] = {}
        self._newest_slot = 0

    # -- quote ------------------------------------------------------------------------

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote:
        pool, layout = await self._venue_pool(token_in, token_out)
        mint_in, mint_out = pool.mint_of(token_in), pool.mint_of(token_out)
        decimals_in, decimals_out = self._decimals[mint_in], self._decimals[mint_out]
        raw_in = self._raw(amount, decimals_in, token_in)
        slot, accounts = await self.rpc.accounts(self.model.accounts(layout))
        self._newest_slot = max(self._newest_slot, slot)
        if self._newest_slot - slot > self.policy.max_slot_lag:
            raise TransientError(
                f"{self.name}: pool {pool.address} state is stale: read at slot {slot}, "
                f"{self._newest_slot - slot} slots behind the newest seen ({self._newest_slot})"
            )
        priced = self._price(layout, accounts, mint_in, raw_in)
        scale = Fraction(10**decimals_in, 10**decimals_out)
        return Quote(
            dex=self.name,
            price=ratio(priced.spot_price * scale),
            fee=ratio(priced.fee_rate),
            liquidity=units(priced.reserve_in, decimals_in),
            expected_out=units(priced.amount_out, decimals_out),
            quoted_amount=units(raw_in, decimals_in),
            price_impact=ratio(priced.price_impact),
            pool=str(pool.address),
            slot=slot,
        )

    def explorer_url(self, tx_hash: str) -> str | None:
        return (
            self.policy.explorer_tx_url.replace("{tx_hash}", tx_hash) if self.policy.explorer_tx_url else None
        )

    # -- plan (the build step) --------------------------------------------------------

    async def plan(self, terms: SwapTerms) -> SwapPlan:
        pool, layout = await self._venue_pool(terms.token_in, terms.token_out)
        await self._check_funds(pool, terms)
        instructions = self._instructions(pool, layout, terms, MAX_COMPUTE_UNITS, 0)
        blockhash, _ = await self.rpc.latest_blockhash()
        tx = VersionedTransaction(
            MessageV0.try_compile(self.wallet.pubkey(), instructions, [], blockhash), [self.wallet]
        )
        simulation = await self.rpc.simulate(tx)
        if simulation.err is not None:
            raise SwapRejected(
                f"{self.name}: the swap would fail: {describe_error(simulation.err, instructions)}"
            )
        units = min(
            MAX_COMPUTE_UNITS, math.ceil(Decimal(simulation.units) * self.policy.compute_unit_headroom)
        )
        fees = sorted(await self.rpc.priority_fees([layout.pool, layout.vault_0, layout.vault_1]))
        recent = fees[(len(fees) * 3) // 4] if fees else 0
        priority = min(self.policy.priority_fee_cap, max(self.policy.priority_fee_floor, recent))
        return SwapPlan(compute_units=units, priority_fee=priority)

    async def _check_funds(self, pool: ConfiguredPool, terms: SwapTerms) -> None:
        """A wallet without what the swap spends fails the order before anything is sent."""
        wallet = self.wallet.pubkey()
        mint_in = pool.mint_of(terms.token_in)
        decimals = self._decimals[mint_in]
        raw_in = self._raw(terms.amount, decimals, terms.token_in)
        token_account = associated_token_address(wallet, mint_in)
        _, (wallet_account, held) = await self.rpc.accounts([wallet, token_account])
        lamports = wallet_account.lamports if wallet_account is not None else 0
        # Fees and the rent of the accounts the swap may open (refunded when closed).
        reserve = SIGNATURE_FEE_LAMPORTS * 2 + 2 * TOKEN_ACCOUNT_RENT_LAMPORTS
        if mint_in == WSOL_MINT:
            if lamports < raw_in + reserve:
                raise SwapRejected(
                    f"insufficient funds: the wallet {wallet} holds {units(lamports, 9)} SOL; "
                    f"the swap needs {terms.amount} SOL plus up to {units(reserve, 9)} SOL "
                    "of fees and account rent"
                )
            return
        balance = decode_token_account(held.data).amount if held is not None else 0
        if balance < raw_in:
            raise SwapRejected(
                f"insufficient funds: the wallet {wallet} holds {units(balance, decimals)} "
                f"{terms.token_in}; the swap needs {terms.amount}"
            )
        if lamports < reserve:
            raise SwapRejected(
                f"insufficient funds: the wallet {wallet} holds {units(lamports, 9)} SOL, less than the "
                f"{units(reserve, 9)} SOL of fees and account rent the swap may need"
            )

    # -- sign and send ----------------------------------------------------------------

    async def sign(self, terms: SwapTerms, idempotency_key: str) -> SignedSwap:
        pool, layout = await self._venue_pool(terms.token_in, terms.token_out)
        instructions = self._instructions(
            pool, layout, terms, terms.compute_units or MAX_COMPUTE_UNITS, terms.priority_fee or 0
        )
        blockhash, last_valid = await self.rpc.latest_blockhash()
        message = MessageV0.try_compile(self.wallet.pubkey(), instructions, [], blockhash)
        tx = VersionedTransaction(message, [self.wallet])
        return SignedSwap(
            signature=str(tx.signatures[0]),
            transaction=base64.b64encode(bytes(tx)).decode(),
            last_valid_block_height=last_valid,
        )

    async def send(self, swap: SignedSwap, terms: SwapTerms) -> None:
        tx, signature = _transaction(swap)
        if await self.rpc.status(signature) is not None:
            return  # it landed (or failed on chain): confirm reads which
        assert swap.last_valid_block_height is not None
        if await self.rpc.block_height() > swap.last_valid_block_height:
            raise SwapExpired(swap.signature)
        try:
            await self.rpc.send(tx, preflight=True)
        except PreflightFailed as exc:
            await self._refused_at_preflight(swap, tx, exc)

    async def _refused_at_preflight(
        self, swap: SignedSwap, tx: VersionedTransaction, exc: PreflightFailed
    ) -> None:
        if exc.err == TransactionErrorFieldless.AlreadyProcessed:
            return
        if exc.err == TransactionErrorFieldless.BlockhashNotFound:
            assert swap.last_valid_block_height is not None
            if await self.rpc.block_height() > swap.last_valid_block_height:
                raise SwapExpired(swap.signature) from None
            raise TransientError(
                f"{self.name}: the node does not know the blockhash of {swap.signature} yet"
            ) from None
        reason = describe_error(exc.err, instructions_of(tx)) if exc.err is not None else str(exc)
        raise SwapRejected(f"{self.name}: the node refused the swap: {reason}") from None

    # -- confirm ----------------------------------------------------------------------

    async def confirm(self, swap: SignedSwap, terms: SwapTerms) -> SwapReceipt:
        tx, signature = _transaction(swap)
        assert swap.last_valid_block_height is not None
        deadline = self._monotonic() + self.policy.confirm_timeout_s
        last_sent = self._monotonic()
        rpc_failure: TransientError | None = None
        while True:
            try:
                status = await self.rpc.status(signature)
                rpc_failure = None
                if status is not None:
                    if status.err is not None:
                        reason = describe_error(status.err, instructions_of(tx))
                        raise SwapRejected(f"{self.name}: the swap failed on chain: {reason}")
                    if _reached(status.confirmation_status, self.policy.commitment):
                        return await self._receipt(swap, tx, terms)
                elif await self.rpc.block_height() > swap.last_valid_block_height:
                    # Looked up once more: it may have landed between the two calls.
                    if await self.rpc.status(signature) is None:
                        raise SwapExpired(swap.signature)
                    continue
                if self._monotonic() - last_sent >= self.policy.rebroadcast_interval_s:
                    last_sent = self._monotonic()
                    await self._rebroadcast(tx)
            except TransientError as exc:
                rpc_failure = exc  # an RPC blip while waiting: keep waiting until the deadline
            if self._monotonic() >= deadline:
                if rpc_failure is not None:
                    raise rpc_failure
                # Still valid, not landed yet: the step asks again later (no attempt spent).
                raise SwapPending(swap.signature, int(self.policy.poll_interval_s * 1000))
            await self._sleep(self.policy.poll_interval_s)

    async def _rebroadcast(self, tx: VersionedTransaction) -> None:
        try:
            await self.rpc.send(tx, preflight=False)
        except PreflightFailed:
            pass  # skipped preflight: a node may still simulate; the status decides

    async def _receipt(self, swap: SignedSwap, tx: VersionedTransaction, terms: SwapTerms) -> SwapReceipt:
        """What the landed swap did (`swap_receipt`), once the node can return the transaction."""
        found = await self.rpc.transaction(Signature.from_string(swap.signature))
        if found is None or found.transaction.meta is None:
            raise TransientError(f"{self.name}: {swap.signature} landed but the node cannot return it yet")
        pool, layout = await self._venue_pool(terms.token_in, terms.token_out)  # decimals too
        mint_in, mint_out = pool.mint_of(terms.token_in), pool.mint_of(terms.token_out)
        vault_in, vault_out = (
            (layout.vault_0, layout.vault_1) if mint_in == layout.mint_0 else (layout.vault_1, layout.vault_0)
        )
        return swap_receipt(
            swap.signature,
            tx,
            found.transaction.meta,
            int(found.slot),
            vault_in=vault_in,
            vault_out=vault_out,
            decimals_in=self._decimals[mint_in],
            decimals_out=self._decimals[mint_out],
        )

    # -- helpers ----------------------------------------------------------------------

    def _pool(self, token_in: str, token_out: str) -> ConfiguredPool:
        pool = self.book.pool_for(self.name, token_in, token_out)
        if pool is None:
            raise NoPool(token_in, token_out)
        return pool

    async def _venue_pool(self, token_in: str, token_out: str) -> tuple[ConfiguredPool, PoolLayout]:
        """The pool for the pair with both mints known, and its fixed addresses (read once)."""
        configured = self._pool(token_in, token_out)
        known = self._layouts.get(configured.address)
        if known is not None:
            return known
        _, (account,) = await self.rpc.accounts([configured.address])
        if account is None:
            raise TransientError(f"{self.name}: pool {configured.address} does not exist on this cluster")
        if account.owner != configured.program_id:
            raise TransientError(
                f"{self.name}: {configured.address} is owned by {account.owner}, not {configured.program_id}"
            )
        try:
            layout = self.model.layout(configured.address, account)
            pool = configured.with_mints({layout.mint_0, layout.mint_1})
        except (PoolUnavailable, PoolConfigError) as exc:
            raise TransientError(f"{self.name}: {exc}") from None
        await self._learn_decimals(layout)
        self._layouts[configured.address] = (pool, layout)
        return pool, layout

    async def _learn_decimals(self, layout: PoolLayout) -> None:
        known = {layout.mint_0: layout.decimals_0, layout.mint_1: layout.decimals_1}
        missing = [
            mint for mint, decimals in known.items() if decimals is None and mint not in self._decimals
        ]
        if missing:
            _, accounts = await self.rpc.accounts(missing)
            for mint, account in zip(missing, accounts, strict=True):
                if account is None:
                    raise TransientError(f"{self.name}: mint {mint} does not exist")
                known[mint] = decode_mint(account.data).decimals
        for mint, decimals in known.items():
            if decimals is not None:
                self._decimals[mint] = decimals

    def _price(
        self, layout: PoolLayout, accounts: Sequence[object], mint_in: Pubkey, raw_in: int
    ) -> PricedSwap:
        try:
            return self.model.price(layout, accounts, mint_in, raw_in)  # type: ignore[arg-type]
        except PoolUnavailable as exc:
            raise TransientError(f"{self.name}: {exc}") from None
        except UnsupportedPool as exc:
            raise TransientError(f"{self.name}: pool {layout.pool} left out: {exc.reason}") from None
        except ProgramError as exc:
            raise TransientError(f"{self.name}: pool {layout.pool} would refuse the swap: {exc}") from None
        except ProgramPanic as exc:
            raise TransientError(f"{self.name}: pool {layout.pool} cannot price the swap: {exc}") from None

    def _raw(self, amount: Decimal, decimals: int, token: str) -> int:
        raw = int((amount * 10**decimals).to_integral_value(rounding=ROUND_DOWN))
        if raw <= 0:
            raise SwapRejected(f"{amount} {token} is less than the token's smallest unit (10^-{decimals})")
        return raw

    def _instructions(
        self, pool: ConfiguredPool, layout: PoolLayout, terms: SwapTerms, units: int, priority_fee: int
    ) -> list[Instruction]:
        """Compute budget, wrap SOL (if paid in), open the output account, swap, close wSOL."""
        wallet = self.wallet.pubkey()
        mint_in, mint_out = pool.mint_of(terms.token_in), pool.mint_of(terms.token_out)
        raw_in = self._raw(terms.amount, self._decimals[mint_in], terms.token_in)
        min_out = int((terms.min_out * 10 ** self._decimals[mint_out]).to_integral_value(rounding=ROUND_DOWN))
        instructions = compute_budget_instructions(units, priority_fee)
        if mint_in == WSOL_MINT:
            instructions += wrap_sol(wallet, raw_in)
        instructions.append(create_associated_token_account_idempotent(wallet, wallet, mint_out))
        instructions.append(
            self.model.swap_instruction(
                layout,
                wallet=wallet,
                input_account=associated_token_address(wallet, mint_in),
                output_account=associated_token_address(wallet, mint_out),
                mint_in=mint_in,
                amount_in=raw_in,
                minimum_out=min_out,
            )
        )
        if WSOL_MINT in (mint_in, mint_out):
            instructions.append(close_account(associated_token_address(wallet, WSOL_MINT), wallet, wallet))
        return instructions


# solders' status enum is not hashable: the levels are listed in order instead.
_COMMITMENTS = (
    TransactionConfirmationStatus.Processed,
    TransactionConfirmationStatus.Confirmed,
    TransactionConfirmationStatus.Finalized,
)
_LEVELS = {"processed": 0, "confirmed": 1, "finalized": 2}


def _reached(status: TransactionConfirmationStatus | None, commitment: str) -> bool:
    """Whether a signature's status has reached the commitment the engine confirms at."""
    return status is not None and _COMMITMENTS.index(status) >= _LEVELS[commitment]


def _transaction(swap: SignedSwap) -> tuple[VersionedTransaction, Signature]:
    if swap.transaction is None:
        raise RuntimeError(f"{swap.signature} has no signed transaction recorded")
    tx = VersionedTransaction.from_bytes(base64.b64decode(swap.transaction))
    return tx, Signature.from_string(swap.signature)
