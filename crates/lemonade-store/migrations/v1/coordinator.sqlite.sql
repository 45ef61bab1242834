
    CREATE TABLE sagas (
        order_id        TEXT PRIMARY KEY,
        state           TEXT NOT NULL CHECK (state IN ('running', 'compensating', 'confirmed', 'failed', 'rejected')),
        -- The order as placed (priced by the stock service), JSON; none for a refused one.
        plan            TEXT,
        -- Why it failed or was refused (a ShopError as JSON), once it has.
        outcome         TEXT,
        idempotency_key TEXT UNIQUE,
        fingerprint     TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        CHECK ((idempotency_key IS NULL) = (fingerprint IS NULL)),
        CHECK ((plan IS NULL) = (state = 'rejected'))
    ) WITHOUT ROWID;
    CREATE INDEX sagas_unfinished ON sagas (updated_at) WHERE state IN ('running', 'compensating');
    CREATE INDEX sagas_by_age ON sagas (created_at);
