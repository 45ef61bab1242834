
    CREATE TABLE ingredients (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        unit          TEXT NOT NULL CHECK (unit IN ('g', 'ml', 'piece')),
        on_hand       INTEGER NOT NULL CHECK (on_hand >= 0),
        reorder_level INTEGER NOT NULL CHECK (reorder_level >= 0),
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- The ledger. Append-only: the triggers below refuse every UPDATE and DELETE. `seq` is
    -- the order moves were written in (the single writer assigns it), which is what a replay
    -- of the running balance must follow; clients see it as the move's id.
    CREATE TABLE stock_moves (
        seq           INTEGER PRIMARY KEY,
        ingredient_id TEXT NOT NULL REFERENCES ingredients (id),
        delta         INTEGER NOT NULL,
        reason        TEXT NOT NULL CHECK (reason IN ('sale', 'cancel', 'restock', 'waste', 'count')),
        order_id      TEXT,
        note          TEXT,
        created_at    INTEGER NOT NULL,
        CHECK ((reason IN ('sale', 'cancel')) = (order_id IS NOT NULL))
    );
    CREATE INDEX stock_moves_by_ingredient ON stock_moves (ingredient_id, seq);

    -- Every recipe a product has had, as [[ingredient_id, quantity], ...], so the audit can
    -- prove an order's sale moves match the recipe it was sold with after the recipe changed.
    -- (Written before its product, so `product_id` is checked by the audit, not a key.)
    CREATE TABLE recipe_versions (
        id         INTEGER PRIMARY KEY,
        product_id TEXT NOT NULL,
        recipe     TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE products (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        price      INTEGER NOT NULL CHECK (price >= 0),
        active     INTEGER NOT NULL CHECK (active IN (0, 1)),
        -- The recipe as it is now, frozen: orders keep the version they were sold with.
        recipe_version INTEGER NOT NULL REFERENCES recipe_versions (id),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE recipe_items (
        product_id    TEXT NOT NULL REFERENCES products (id),
        ingredient_id TEXT NOT NULL REFERENCES ingredients (id),
        quantity      INTEGER NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (product_id, ingredient_id)
    ) WITHOUT ROWID;


    CREATE TABLE reservations (
        order_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released')),
        -- What it took, as [[ingredient_id, quantity], ...]; empty for a release that came
        -- before its reservation (which then can never be taken).
        needs      TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK ((status = 'held') = (expires_at IS NOT NULL))
    ) WITHOUT ROWID;
    CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'held';

    CREATE TABLE step_results (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        result      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX step_results_by_age ON step_results (created_at);

    CREATE TABLE inbox (
        event_id   TEXT PRIMARY KEY,
        applied_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TRIGGER stock_moves_apply AFTER INSERT ON stock_moves
        BEGIN UPDATE ingredients SET on_hand = on_hand + NEW.delta WHERE id = NEW.ingredient_id; END;
    CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
    CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
