-- The orders read model: a projection of the log, rebuildable at any time.
CREATE TABLE orders (
    id                 uuid PRIMARY KEY,
    user_id            text        NOT NULL,
    order_type         text        NOT NULL,
    token_in           text        NOT NULL,
    token_out          text        NOT NULL,
    amount             numeric     NOT NULL,
    limit_price        numeric,
    slippage_tolerance numeric     NOT NULL,
    status             text        NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    attempts           integer     NOT NULL DEFAULT 0,
    last_error         text,
    chosen_dex         text,
    chosen_quote       jsonb,
    quotes             jsonb,
    expected_out       numeric,
    min_out            numeric,
    executed_price     numeric,
    amount_out         numeric,
    tx_hash            text,
    version            integer     NOT NULL
);

CREATE INDEX orders_user_created ON orders (user_id, created_at DESC);
CREATE INDEX orders_status ON orders (status);
