"""Order statistics, read-only, from the `stats` projection: per user and per token pair.

With API keys a caller reads only their own user's statistics: another user's
answer 404 exactly like a user with no orders, so a caller learns nothing about
them. Pair statistics add up every user's orders and are shown to any caller.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

from api.auth import caller_of
from api.context import ApiDependency
from api.input_rules import IDENTIFIER_PATTERN, MAX_ID_LENGTH, identifier, in_path, token_symbol
from api.openapi_docs import BEARER, documented, errors, ok
from api.schemas import ErrorBody, PairStats, PairStatsList, UserStats, error_body
from domain.tokens import TOKENS
from projections.stats_views import pair_stats, user_stats

UserIdPath = Annotated[
    str,
    PathParameter(
        description="The user's id (the orders' userId): 1 to 128 characters, no control characters",
        # Documentation only (checked by hand so the refusal names the field in our error body).
        schema_extra={"min_length": 1, "max_length": MAX_ID_LENGTH, "pattern": IDENTIFIER_PATTERN},
    ),
]
TokenPath = Annotated[
    str, PathParameter(description="A token symbol, e.g. SOL", schema_extra={"enum": sorted(TOKENS)})
]


_NO_USER: dict[int, tuple[str, ErrorBody]] = {
    404: (
        "The user has no orders (or is not the API key's user, or breaks the userId rule: `field` says)",
        error_body("not_found", "no orders of user user-9"),
    )
}
_NO_PAIR: dict[int, tuple[str, ErrorBody]] = {
    404: (
        "No order has traded this pair (or a symbol is not a known token: `field` says)",
        error_body("not_found", "no orders of pair SOL/JUP"),
    )
}


@get(
    "/api/stats/users/{user_id:str}",
    security=BEARER,
    responses={200: ok(UserStats, "user_stats"), **errors(401, 404, 503, examples=_NO_USER)},
    operation_class=documented(),
)
async def user_stats_handler(
    user_id: UserIdPath, request: Request[Any, Any, Any], api: ApiDependency
) -> UserStats:
    """A user's orders by status, success rate and execution time, and each pair they traded."""
    in_path(identifier, "userId", user_id)
    caller = caller_of(request)
    found = await user_stats(api.engine.database.pool, user_id) if caller in (None, user_id) else None
    if found is None:
        raise NotFoundException(f"no orders of user {user_id}")
    return msgspec.convert(found, UserStats)


@get(
    "/api/stats/pairs",
    security=BEARER,
    responses={200: ok(PairStatsList, "pairs_stats"), **errors(401, 503)},
    operation_class=documented(),
)
async def pairs_stats_handler(api: ApiDependency) -> PairStatsList:
    """Every token pair's orders over all users: counts, volumes, success rate, execution time."""
    return PairStatsList(pairs=msgspec.convert(await pair_stats(api.engine.database.pool), list[PairStats]))


@get(
    "/api/stats/pairs/{token_in:str}/{token_out:str}",
    security=BEARER,
    responses={200: ok(PairStats, "pair_stats"), **errors(401, 404, 503, examples=_NO_PAIR)},
    operation_class=documented(),
)
async def pair_stats_handler(token_in: TokenPath, token_out: TokenPath, api: ApiDependency) -> PairStats:
    """One token pair's orders over all users (tokenIn → tokenOut; the reverse is another pair)."""
    in_path(token_symbol, "tokenIn", token_in)
    in_path(token_symbol, "tokenOut", token_out)
    found = await pair_stats(api.engine.database.pool, token_in, token_out)
    if not found:
        raise NotFoundException(f"no orders of pair {token_in}/{token_out}")
    return msgspec.convert(found[0], PairStats)


STATS_ROUTES = [user_stats_handler, pairs_stats_handler, pair_stats_handler]
