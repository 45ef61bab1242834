
    CREATE TABLE customers (
        id            TEXT COLLATE "C" PRIMARY KEY,
        name          TEXT COLLATE "C" NOT NULL,
        email         TEXT COLLATE "C",
        phone         TEXT COLLATE "C",
        points        BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
        anonymised_at BIGINT,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    CREATE TABLE customer_activity (
        id           TEXT COLLATE "C" PRIMARY KEY,
        customer_id  TEXT COLLATE "C" NOT NULL REFERENCES customers (id),
        kind         TEXT COLLATE "C" NOT NULL,
        order_id     TEXT COLLATE "C",
        points_delta BIGINT NOT NULL,
        created_at   BIGINT NOT NULL
    );
    CREATE INDEX customer_activity_by_customer ON customer_activity (customer_id, id);

    CREATE TABLE inbox (
        event_id   TEXT COLLATE "C" PRIMARY KEY,
        applied_at BIGINT NOT NULL
    );

    CREATE TABLE step_results (
        key         TEXT COLLATE "C" PRIMARY KEY,
        fingerprint TEXT COLLATE "C" NOT NULL,
        result      TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL
    );
    CREATE INDEX step_results_by_age ON step_results (created_at);
