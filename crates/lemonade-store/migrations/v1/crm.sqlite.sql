
    CREATE TABLE customers (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        email         TEXT,
        phone         TEXT,
        points        INTEGER NOT NULL DEFAULT 0 CHECK (points >= 0),
        anonymised_at INTEGER,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE customer_activity (
        id           TEXT PRIMARY KEY,
        customer_id  TEXT NOT NULL REFERENCES customers (id),
        kind         TEXT NOT NULL,
        order_id     TEXT,
        points_delta INTEGER NOT NULL,
        created_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX customer_activity_by_customer ON customer_activity (customer_id, id);

    CREATE TABLE inbox (
        event_id   TEXT PRIMARY KEY,
        applied_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE step_results (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        result      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX step_results_by_age ON step_results (created_at);
