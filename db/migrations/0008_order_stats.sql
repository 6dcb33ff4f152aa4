-- Per-user and per-pair order statistics: a projection of the log (projections/stats_projection.py),
-- rebuildable at any time (projections/rebuild.py).

-- What each order currently contributes to the aggregates below. When an event moves an
-- order to another status, the handler subtracts the old contribution and adds the new one,
-- so a count moves from one status to another; `version` is the last event applied, and
-- an event at or below it is ignored (re-applying a batch changes nothing).
CREATE TABLE stats_orders (
    order_id           uuid PRIMARY KEY,
    user_id            text        NOT NULL,
    token_in           text        NOT NULL,
    token_out          text        NOT NULL,
    status             text        NOT NULL,
    amount             numeric     NOT NULL,
    amount_out         numeric,
    placed_at          timestamptz NOT NULL,
    -- pending -> confirmed by the log's recorded_at, confirmed orders only; numeric so the
    -- sums below are exact whatever order orders are added and removed in.
    execution_seconds  numeric,
    version            integer     NOT NULL
);

-- Sums over the orders of one user, pair and status. amount_out and execution_seconds are
-- non-zero on `confirmed` rows only. A row whose count drops to 0 is deleted.
CREATE TABLE stats_user_pairs (
    user_id            text    NOT NULL,
    token_in           text    NOT NULL,
    token_out          text    NOT NULL,
    status             text    NOT NULL,
    orders             bigint  NOT NULL,
    amount_in          numeric NOT NULL,
    amount_out         numeric NOT NULL,
    execution_seconds  numeric NOT NULL,
    PRIMARY KEY (user_id, token_in, token_out, status)
);

-- The same sums over every user: what GET /api/stats/pairs reads without scanning all users.
CREATE TABLE stats_pairs (
    token_in           text    NOT NULL,
    token_out          text    NOT NULL,
    status             text    NOT NULL,
    orders             bigint  NOT NULL,
    amount_in          numeric NOT NULL,
    amount_out         numeric NOT NULL,
    execution_seconds  numeric NOT NULL,
    PRIMARY KEY (token_in, token_out, status)
);
