
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
        order_id      TEXT REFERENCES orders (id),
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
        order_id     TEXT REFERENCES orders (id),
        points_delta INTEGER NOT NULL,
        created_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX customer_activity_by_customer ON customer_activity (customer_id, id);

    CREATE TABLE orders (
        id             TEXT PRIMARY KEY,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
        customer_id    TEXT REFERENCES customers (id),
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
        product_id TEXT NOT NULL REFERENCES products (id),
        name       TEXT NOT NULL,
        quantity   INTEGER NOT NULL CHECK (quantity > 0),
        unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
        recipe_version INTEGER NOT NULL REFERENCES recipe_versions (id),
        PRIMARY KEY (order_id, line_no)
    ) WITHOUT ROWID;

    -- A client's idempotency key with the outcome it produced, written in the transaction
    -- that did the work, so the key can never say "done" for work that did not commit.
    -- A placed order is replayed from the order itself plus what changes after the first
    -- answer (its points); a refusal is kept as the error it was answered with.
    CREATE TABLE idempotency_keys (
        key             TEXT PRIMARY KEY,
        fingerprint     TEXT NOT NULL,
        order_id        TEXT REFERENCES orders (id),
        answered_points INTEGER CHECK (answered_points >= 0),
        rejection       TEXT,
        created_at      INTEGER NOT NULL,
        CHECK ((order_id IS NULL) = (answered_points IS NULL)),
        CHECK ((order_id IS NULL) <> (rejection IS NULL))
    );
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

    CREATE TRIGGER stock_moves_apply AFTER INSERT ON stock_moves
        BEGIN UPDATE ingredients SET on_hand = on_hand + NEW.delta WHERE id = NEW.ingredient_id; END;
    CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
    CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
