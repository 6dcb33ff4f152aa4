"""Which on-chain pools the engine trades, read from `SOLANA_POOLS_FILE` (JSON).

```json
{
  "cluster": "devnet",
  "tokens": {"SOL": "So11111111111111111111111111111111111111112", "USDC": "<mint>"},
  "pools": [
    {"pair": "SOL/USDC", "venue": "raydium", "address": "<Raydium CPMM pool>"},
    {"pair": "SOL/USDC", "venue": "meteora", "address": "<Meteora DAMM v2 pool>"}
  ]
}
```

`tokens` maps the engine's symbols to mints on that cluster (a devnet USDC is not the
mainnet one). It may be left out for a pair whose other side the pool itself names (a
SOL pair: SOL is the native mint, so the pool's other mint is the token's); decimals,
vaults and fees are always read from the chain. `venue` is `raydium`
(Raydium CPMM) or `meteora` (Meteora DAMM v2); `programId` may override the venue's
program id for the cluster. `orderengine localnet` writes this file for the local chain.
A pool serves its pair in both directions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec
from solders.pubkey import Pubkey

from domain.tokens import NATIVE_SOL_MINT, TOKENS

Venue = Literal["raydium", "meteora"]
Cluster = Literal["devnet", "mainnet", "localnet"]

RAYDIUM_CPMM_DEVNET = "DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"
RAYDIUM_CPMM_MAINNET = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
METEORA_DAMM_V2 = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"

# The local chain emulates the devnet deployments (adapters/localnet).
DEFAULT_PROGRAMS: dict[Cluster, dict[Venue, str]] = {
    "devnet": {"raydium": RAYDIUM_CPMM_DEVNET, "meteora": METEORA_DAMM_V2},
    "localnet": {"raydium": RAYDIUM_CPMM_DEVNET, "meteora": METEORA_DAMM_V2},
    "mainnet": {"raydium": RAYDIUM_CPMM_MAINNET, "meteora": METEORA_DAMM_V2},
}


class PoolConfigError(ValueError):
    """The pools file is missing or wrong; the message names the file and the entry."""


class PoolEntry(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    pair: str
    venue: Venue
    address: str
    program_id: str | None = None


class PoolsFile(msgspec.Struct, frozen=True, kw_only=True):
    cluster: Cluster = "devnet"
    tokens: dict[str, str] = {}
    pools: list[PoolEntry] = []


class ConfiguredPool(msgspec.Struct, frozen=True, kw_only=True):
    """One pool, checked: its tokens' symbols and mints, its address and program."""

    venue: Venue
    base: str
    quote: str
    # None: not in the file; the venue learns it from the pool account (the pool's other mint).
    base_mint: Pubkey | None
    quote_mint: Pubkey | None
    address: Pubkey
    program_id: Pubkey

    def serves(self, token_in: str, token_out: str) -> bool:
        return {token_in, token_out} == {self.base, self.quote}

    def mint_of(self, symbol: str) -> Pubkey:
        mint = self.base_mint if symbol == self.base else self.quote_mint
        if mint is None:
            raise LookupError(f"the mint of {symbol} in pool {self.address} is not known yet")
        return mint

    def with_mints(self, chain_mints: set[Pubkey]) -> ConfiguredPool:
        """This pool with both mints, the one the file leaves out taken from the pool's account;
        PoolConfigError if the pool's mints are not the file's."""
        known = {m for m in (self.base_mint, self.quote_mint) if m is not None}
        if not known <= chain_mints or len(chain_mints) != 2:
            named = ", ".join(
                f"{s} {m}" for s, m in ((self.base, self.base_mint), (self.quote, self.quote_mint)) if m
            )
            raise PoolConfigError(
                f"pool {self.address} trades {' / '.join(map(str, sorted(chain_mints, key=str)))}, "
                f"not the configured {named}"
            )
        (other,) = chain_mints - known if len(known) == 1 else (None,)
        return msgspec.structs.replace(
            self, base_mint=self.base_mint or other, quote_mint=self.quote_mint or other
        )


class PoolBook(msgspec.Struct, frozen=True, kw_only=True):
    cluster: Cluster
    pools: list[ConfiguredPool]

    def pool_for(self, venue: str, token_in: str, token_out: str) -> ConfiguredPool | None:
        return next((p for p in self.pools if p.venue == venue and p.serves(token_in, token_out)), None)


def load_pool_book(path: Path) -> PoolBook:
    """Read and check the pools file; PoolConfigError says what is wrong and where."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PoolConfigError(
            f"SOLANA_POOLS_FILE {path} does not exist: write one (docs/devnet.md) or start "
            "`orderengine localnet`, which writes it for the local chain"
        ) from None
    try:
        book = msgspec.json.decode(raw, type=PoolsFile)
    except msgspec.ValidationError as exc:
        raise PoolConfigError(f"SOLANA_POOLS_FILE {path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise PoolConfigError(f"SOLANA_POOLS_FILE {path} is not JSON: {exc}") from None
    return check_pool_book(book, str(path))


def check_pool_book(book: PoolsFile, where: str) -> PoolBook:
    mints = {"SOL": NATIVE_SOL_MINT, **book.tokens}
    for symbol, mint in mints.items():
        if symbol not in TOKENS:
            raise PoolConfigError(
                f"{where}: token {symbol!r} is not one the engine trades ({', '.join(TOKENS)})"
            )
        _pubkey(mint, f"{where}: the mint of {symbol}")
    if mints["SOL"] != NATIVE_SOL_MINT:
        raise PoolConfigError(f"{where}: SOL is the native mint {NATIVE_SOL_MINT}, not {mints['SOL']}")
    pools: list[ConfiguredPool] = []
    for number, entry in enumerate(book.pools, 1):
        label = f"{where}: pool {number} ({entry.pair} on {entry.venue})"
        base, sep, quote = entry.pair.partition("/")
        if not sep or base == quote:
            raise PoolConfigError(f"{label}: pair must be two different symbols like SOL/USDC")
        if base not in mints and quote not in mints:
            raise PoolConfigError(f"{label}: `tokens` names the mint of neither {base} nor {quote}")
        program = entry.program_id or DEFAULT_PROGRAMS[book.cluster][entry.venue]
        pool = ConfiguredPool(
            venue=entry.venue,
            base=base,
            quote=quote,
            base_mint=_pubkey(mints[base], f"{label}: mint of {base}") if base in mints else None,
            quote_mint=_pubkey(mints[quote], f"{label}: mint of {quote}") if quote in mints else None,
            address=_pubkey(entry.address, f"{label}: address"),
            program_id=_pubkey(program, f"{label}: programId"),
        )
        if any(p.venue == pool.venue and p.serves(base, quote) for p in pools):
            raise PoolConfigError(f"{label}: the pair already has a {entry.venue} pool")
        pools.append(pool)
    return PoolBook(cluster=book.cluster, pools=pools)


def _pubkey(text: str, what: str) -> Pubkey:
    try:
        key = Pubkey.from_string(text)
    except BaseException:  # solders raises ValueError, or panics on some malformed input
        raise PoolConfigError(f"{what} is not a base58 public key: {text!r}") from None
    if str(key) != text:
        raise PoolConfigError(f"{what} is not a canonical base58 public key: {text!r}")
    return key


def write_pools_file(path: Path, book: PoolsFile) -> None:
    """Write the file atomically (the local chain does, where the engine's default looks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(book), indent=2) + b"\n")
    tmp.replace(path)
