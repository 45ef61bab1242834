
    CREATE TABLE orders (
        id             TEXT PRIMARY KEY,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
        customer_id    TEXT,
        total          INTEGER NOT NULL CHECK (total >= 0),
        points         INTEGER NOT NULL CHECK (points >= 0),
        failure_reason TEXT,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX orders_by_status ON orders (status, id);
    CREATE INDEX orders_by_customer ON orders (customer_id, id) WHERE customer_id IS NOT NULL;
    CREATE INDEX orders_by_created ON orders (created_at);
    CREATE TABLE order_lines (
        order_id   TEXT NOT NULL REFERENCES orders (id),
        line_no    INTEGER NOT NULL,
        product_id TEXT NOT NULL,
        name       TEXT NOT NULL,
        quantity   INTEGER NOT NULL CHECK (quantity > 0),
        unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
        recipe_version INTEGER NOT NULL,
        PRIMARY KEY (order_id, line_no)
    ) WITHOUT ROWID;

    CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        destination  TEXT NOT NULL CHECK (destination IN ('stock', 'crm')),
        event        TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        delivered_at INTEGER
    );
    CREATE INDEX outbox_undelivered ON outbox (destination, seq) WHERE delivered_at IS NULL;

    CREATE TABLE step_results (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        result      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX step_results_by_age ON step_results (created_at);
