"""The errors the pool programs' swap math can end in, and the programs' error tables.

A `ProgramError` is the program refusing the swap with one of its own codes (what
the transaction would fail with as `InstructionError::Custom(code)`); a
`ProgramPanic` is the program aborting without a code (a Rust panic: division by
zero, `unwrap` of an overflow), which a real transaction reports as
`ProgramFailedToComplete`. `UnsupportedPool` is ours, not the program's: the pool
uses a feature these curves do not price, so a quote leaves it out with that
reason instead of guessing.

The tables are the programs' `error.rs` enums in declaration order (Anchor numbers
custom errors from 6000). They live here, beside the math that raises them, so the
domain needs nothing from the adapters; `adapters.solana.programs` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping


class ProgramError(Exception):
    """The program's own error: `code` is the custom error number it returns."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"{name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message


class ProgramPanic(Exception):
    """The program would abort without an error code (a Rust panic or failed assert)."""


class UnsupportedPool(Exception):
    """The pool uses a feature we do not price (the quote leaves the pool out)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ErrorTable:
    """One program's error codes; `error(name)` builds the `ProgramError` to raise."""

    def __init__(self, entries: Mapping[int, tuple[str, str]]) -> None:
        self.entries: Mapping[int, tuple[str, str]] = dict(entries)
        self._by_name = {name: code for code, (name, _) in self.entries.items()}

    def error(self, name: str) -> ProgramError:
        code = self._by_name[name]
        return ProgramError(code, name, self.entries[code][1])


# Anchor framework errors the swap handlers themselves raise through `require_*!`
# (anchor-lang `error.rs`); the full framework table is in adapters.solana.programs.
ANCHOR_REQUIRE_ERRORS = ErrorTable(
    {
        2501: ("RequireEqViolated", "A require_eq expression was violated"),
        2505: ("RequireGtViolated", "A require_gt expression was violated"),
        2506: ("RequireGteViolated", "A require_gte expression was violated"),
    }
)

# raydium-cp-swap `programs/cp-swap/src/error.rs` (6011-6014 added 2025-08).
RAYDIUM_CPMM_ERRORS = ErrorTable(
    {
        6000: ("NotApproved", "Not approved"),
        6001: ("InvalidOwner", "Input account owner is not the program address"),
        6002: ("EmptySupply", "Input token account empty"),
        6003: ("InvalidInput", "InvalidInput"),
        6004: ("IncorrectLpMint", "Address of the provided lp token mint is incorrect"),
        6005: ("ExceededSlippage", "Exceeds desired slippage limit"),
        6006: ("ZeroTradingTokens", "Given pool token amount results in zero trading tokens"),
        6007: ("NotSupportMint", "Not support token_2022 mint extension"),
        6008: ("InvalidVault", "invaild vault"),
        6009: ("InitLpAmountTooLess", "Init lp amount is too less(Because 100 amount lp will be locked)"),
        6010: ("TransferFeeCalculateNotMatch", "TransferFee calculate not match"),
        6011: ("MathOverflow", "Math overflow"),
        6012: ("InsufficientVault", "Insufficient vault"),
        6013: ("InvalidFeeModel", "Invalid fee model"),
        6014: ("NoFeeCollect", "Fee is zero"),
    }
)

# damm-v2 `programs/cp-amm/src/error.rs` (PoolError), release 0.2.1.
METEORA_DAMM_V2_ERRORS = ErrorTable(
    {
        6000: ("MathOverflow", "Math operation overflow"),
        6001: ("InvalidFee", "Invalid fee setup"),
        6002: ("ExceededSlippage", "Exceeded slippage tolerance"),
        6003: ("PoolDisabled", "Pool disabled"),
        6004: ("ExceedMaxFeeBps", "Exceeded max fee bps"),
        6005: ("InvalidAdmin", "Invalid admin"),
        6006: ("AmountIsZero", "Amount is zero"),
        6007: ("TypeCastFailed", "Type cast error"),
        6008: ("UnableToModifyActivationPoint", "Unable to modify activation point"),
        6009: ("InvalidAuthorityToCreateThePool", "Invalid authority to create the pool"),
        6010: ("InvalidActivationType", "Invalid activation type"),
        6011: ("InvalidActivationPoint", "Invalid activation point"),
        6012: ("InvalidQuoteMint", "Quote token must be SOL,USDC"),
        6013: ("InvalidFeeCurve", "Invalid fee curve"),
        6014: ("InvalidPriceRange", "Invalid Price Range"),
        6015: ("PriceRangeViolation", "Trade is over price range"),
        6016: ("InvalidParameters", "Invalid parameters"),
        6017: ("InvalidCollectFeeMode", "Invalid collect fee mode"),
        6018: ("InvalidInput", "Invalid input"),
        6019: ("CannotCreateTokenBadgeOnSupportedMint", "Cannot create token badge on supported mint"),
        6020: ("InvalidTokenBadge", "Invalid token badge"),
        6021: ("InvalidMinimumLiquidity", "Invalid minimum liquidity"),
        6022: ("InvalidVestingInfo", "Invalid vesting information"),
        6023: ("InsufficientLiquidity", "Insufficient liquidity"),
        6024: ("InvalidVestingAccount", "Invalid vesting account"),
        6025: ("InvalidPoolStatus", "Invalid pool status"),
        6026: ("UnsupportNativeMintToken2022", "Unsupported native mint token2022"),
        6027: ("InvalidRewardIndex", "Invalid reward index"),
        6028: ("InvalidRewardDuration", "Invalid reward duration"),
        6029: ("RewardInitialized", "Reward already initialized"),
        6030: ("RewardUninitialized", "Reward not initialized"),
        6031: ("InvalidRewardVault", "Invalid reward vault"),
        6032: ("MustWithdrawnIneligibleReward", "Must withdraw ineligible reward"),
        6033: ("IdenticalRewardDuration", "Reward duration is the same"),
        6034: ("RewardCampaignInProgress", "Reward campaign in progress"),
        6035: ("IdenticalFunder", "Identical funder"),
        6036: ("InvalidFunder", "Invalid funder"),
        6037: ("RewardNotEnded", "Reward not ended"),
        6038: ("FeeInverseIsIncorrect", "Fee inverse is incorrect"),
        6039: ("PositionIsNotEmpty", "Position is not empty"),
        6040: ("InvalidPoolCreatorAuthority", "Invalid pool creator authority"),
        6041: ("InvalidConfigType", "Invalid config type"),
        6042: ("InvalidPoolCreator", "Invalid pool creator"),
        6043: ("RewardVaultFrozenSkipRequired", "Reward vault is frozen, must skip reward to proceed"),
        6044: ("InvalidSplitPositionParameters", "Invalid parameters for split position"),
        6045: ("UnsupportPositionHasVestingLock", "Unsupported split position has vesting lock"),
        6046: ("SamePosition", "Same position"),
        6047: ("InvalidBaseFeeMode", "Invalid base fee mode"),
        6048: ("InvalidFeeRateLimiter", "Invalid fee rate limiter"),
        6049: (
            "FailToValidateSingleSwapInstruction",
            "Fail to validate single swap instruction in rate limiter",
        ),
        6050: ("InvalidFeeTimeScheduler", "Invalid fee scheduler"),
        6051: ("UndeterminedError", "Undetermined error"),
        6052: ("InvalidPoolVersion", "Invalid pool version"),
        6053: ("InvalidAuthority", "Invalid authority to do that action"),
        6054: ("InvalidPermission", "Invalid permission"),
        6055: ("InvalidFeeMarketCapScheduler", "Invalid fee market cap scheduler"),
        6056: ("CannotUpdateBaseFee", "Cannot update base fee"),
        6057: ("InvalidDynamicFeeParameters", "Invalid dynamic fee parameters"),
        6058: ("InvalidUpdatePoolFeesParameters", "Invalid update pool fees parameters"),
        6059: ("MissingOperatorAccount", "Missing operator account"),
        6060: ("IncorrectATA", "Incorrect ATA"),
        6061: ("InvalidZapOutParameters", "Invalid zap out parameters"),
        6062: ("InvalidWithdrawProtocolFeeZapAccounts", "Invalid withdraw protocol fee zap accounts"),
        6063: ("MintRestrictedFromZap", "SOL,USDC protocol fee cannot be withdrawn via zap"),
        6064: ("CpiDisabled", "CPI disabled"),
        6065: ("MissingZapOutInstruction", "Missing zap out instruction"),
        6066: ("InvalidZapAccounts", "Invalid zap accounts"),
        6067: ("InvalidCompoundingFeeBps", "Invalid compounding fee bps"),
        6068: ("InvalidClaimProtocolFeeAccounts", "Invalid claim protocol fee accounts"),
        6069: ("TransferFeeExcludedAmountIsZero", "Transfer fee excluded amount is zero"),
    }
)
