"""Metrics on real servers: scrape-time readings from Postgres and Redis, lifecycle counts
taken by the orders projection, and GET /metrics with its HTTP middleware."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters import metrics
from adapters.bootstrap import bootstrap
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_layout import PRIORITY_QUEUE, QUEUE
from adapters.settings import Settings, load_settings
from api.app import create_app
from api.metrics_routes import scrape_readings
from domain.commands import (
    BuildTransaction,
    FailOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.services.handling import handle
from projections import orders_projection, redis_relay
from projections.log_follower import LogFollower, write_checkpoint
from tests.factories import new_order_id, place_order, quotes
from tests.unit.test_metrics import sample, samples

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Pool = AsyncConnectionPool[AsyncConnection[Any]]


def settings_for(database_url: str, redis_url: str, prefix: str) -> Settings:
    return load_settings({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix})


async def drain(follower: LogFollower) -> None:
    while await follower.step():
        pass


async def placed_order(store: PostgresEventStore, **overrides: object) -> str:
    oid = new_order_id()
    await handle(store, oid, place_order(oid, **overrides), actor="test")
    return oid


async def confirmed_order(store: PostgresEventStore) -> str:
    oid = await placed_order(store, order_type="sniper")
    for command in (
        RouteOrder(command_id="r", quotes=quotes(raydium="150", meteora="140")),
        BuildTransaction(command_id="b"),
        RequestSwap(command_id="s", idempotency_key=f"{oid}:swap"),
        RecordSubmission(command_id="sub", tx_hash="tx"),
        RecordConfirmation(
            command_id="c", tx_hash="tx", executed_price=Decimal(150), amount_out=Decimal(224)
        ),
    ):
        await handle(store, oid, command, actor="test")
    return oid


async def test_follower_lag_counts_unread_events_and_their_age(own_pool: Pool) -> None:
    store = PostgresEventStore(own_pool.connection)
    oid = await placed_order(store)
    await handle(store, oid, RouteOrder(command_id="r", quotes=quotes()), actor="test")
    await handle(store, oid, BuildTransaction(command_id="b"), actor="test")
    first = (await store.read_stream(oid))[0].position
    async with own_pool.connection() as conn:
        await write_checkpoint(conn, redis_relay.NAME, first)

    lag = await metrics.read_follower_lag(own_pool, [redis_relay.NAME, orders_projection.NAME])
    assert lag[redis_relay.NAME][0] == 2
    assert lag[redis_relay.NAME][1] > 0
    assert lag[orders_projection.NAME][0] == 3  # never ran: the whole log is behind it

    async with own_pool.connection() as conn:
        await write_checkpoint(conn, redis_relay.NAME, first + 2)
    assert (await metrics.read_follower_lag(own_pool, [redis_relay.NAME]))[redis_relay.NAME] == (0, 0.0)


async def test_open_orders_are_counted_by_status_from_the_projection(own_pool: Pool) -> None:
    store = PostgresEventStore(own_pool.connection)
    await placed_order(store)
    await placed_order(store)
    routed = await placed_order(store)
    await handle(store, routed, RouteOrder(command_id="r", quotes=quotes()), actor="test")
    await confirmed_order(store)
    await drain(
        LogFollower(
            own_pool, orders_projection.NAME, orders_projection.apply_batch, version=orders_projection.VERSION
        )
    )

    assert await metrics.read_open_orders(own_pool) == {
        "pending": 2,
        "waiting": 0,
        "routing": 1,
        "building": 0,
        "submitted": 0,
    }


async def test_the_projection_counts_each_lifecycle_event_once(own_pool: Pool) -> None:
    store = PostgresEventStore(own_pool.connection)
    projection = LogFollower(
        own_pool, orders_projection.NAME, orders_projection.apply_batch, version=orders_projection.VERSION
    )
    accepted = sample("orderengine_orders_accepted_total", order_type="sniper")
    confirmed = sample("orderengine_orders_confirmed_total", order_type="sniper", dex="raydium")
    latencies = sample("orderengine_order_end_to_end_seconds_count", order_type="sniper")
    retries = sample("orderengine_retries_total", step="route")
    failed = sample("orderengine_orders_failed_total", order_type="market", step="route")

    await confirmed_order(store)
    failing = await placed_order(store)
    retry = RecordAttemptFailure(
        command_id="f1", step="route", attempt=1, max_attempts=3, error="rpc down", delay_ms=50
    )
    await handle(store, failing, retry, actor="test")
    await handle(store, failing, FailOrder(command_id="f2", step="route", error="no pool"), actor="test")
    await drain(projection)
    await drain(projection)  # nothing new: nothing counted again

    assert sample("orderengine_orders_accepted_total", order_type="sniper") == accepted + 1
    assert sample("orderengine_orders_confirmed_total", order_type="sniper", dex="raydium") == confirmed + 1
    assert sample("orderengine_order_end_to_end_seconds_count", order_type="sniper") == latencies + 1
    assert sample("orderengine_retries_total", step="route") == retries + 1
    assert sample("orderengine_orders_failed_total", order_type="market", step="route") == failed + 1


async def test_queue_depth_reads_dramatiqs_own_keys(redis_url: str, redis_prefix: str) -> None:
    engine = bootstrap(settings_for("postgresql://unused", redis_url, redis_prefix))
    try:
        await engine.queue.send("route", new_order_id())
        await engine.queue.send("build", new_order_id())
        await engine.queue.send("route", new_order_id(), delay_ms=60_000)
        await engine.queue.send("route", new_order_id(), priority=True)
        depths = await metrics.read_queue_depths(
            engine.redis, engine.layout.dramatiq_namespace, [QUEUE, PRIORITY_QUEUE]
        )
    finally:
        await engine.redis.aclose()
    assert depths[QUEUE] == {"ready": 2, "unacked": 0, "delayed": 1, "dead": 0}
    assert depths[PRIORITY_QUEUE] == {"ready": 1, "unacked": 0, "delayed": 0, "dead": 0}


async def test_a_source_that_is_down_is_reported_without_failing_the_scrape(
    redis_url: str, redis_prefix: str
) -> None:
    # The pool is never opened: every Postgres reading fails, as with the server down.
    engine = bootstrap(settings_for("postgresql://unused", redis_url, redis_prefix))
    try:
        families = await scrape_readings(engine)
    finally:
        await engine.redis.aclose()
    up = {s.labels["source"]: s.value for f in families if f.name.endswith("source_up") for s in f.samples}
    assert up == {"postgres": 0, "redis": 1}
    names = {f.name for f in families}
    assert "orderengine_queue_depth" in names and "orderengine_outbox_lag_events" not in names


async def test_metrics_endpoint_labels_requests_by_route_template(
    database_url: str, redis_url: str, redis_prefix: str
) -> None:
    unknown = str(uuid.uuid4())
    labels = {"method": "GET", "route": "/api/orders/{order_id}", "status": "404"}
    before = sample("orderengine_http_requests_total", **labels)
    async with AsyncTestClient(app=create_app(settings_for(database_url, redis_url, redis_prefix))) as client:
        assert (await client.get(f"/api/orders/{unknown}")).status_code == 404
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].count("charset") == 1
    found = samples(response.text)
    assert found[("orderengine_http_requests_total", frozenset(labels.items()))] == before + 1
    assert not any(unknown in value for _, labels in found for _, value in labels)
    assert found[("orderengine_metrics_source_up", frozenset({"source": "postgres"}.items()))] == 1
    assert found[("orderengine_metrics_source_up", frozenset({"source": "redis"}.items()))] == 1
