
    CREATE TABLE sagas (
        order_id        TEXT COLLATE "C" PRIMARY KEY,
        state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('running', 'compensating', 'confirmed', 'failed', 'rejected')),
        -- The order as placed (priced by the stock service), JSON; none for a refused one.
        plan            TEXT COLLATE "C",
        -- Why it failed or was refused (a ShopError as JSON), once it has.
        outcome         TEXT COLLATE "C",
        idempotency_key TEXT COLLATE "C" UNIQUE,
        fingerprint     TEXT COLLATE "C",
        attempts        BIGINT NOT NULL DEFAULT 0,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        CHECK ((idempotency_key IS NULL) = (fingerprint IS NULL)),
        CHECK ((plan IS NULL) = (state = 'rejected'))
    );
    CREATE INDEX sagas_unfinished ON sagas (updated_at) WHERE state IN ('running', 'compensating');
    CREATE INDEX sagas_by_age ON sagas (created_at);
