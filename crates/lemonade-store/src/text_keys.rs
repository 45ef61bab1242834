//! Version 2, names as a person reads them: the keys that make "the same name" and customer
//! search work the way a person reads text (`lemonade_domain::text`), added to databases of
//! version 1.
//!
//! - `ingredients.name_key`, `products.name_key`: [`name_key`] of the name, `UNIQUE`, so the
//!   database itself refuses a second "Café T" however it is written (case, composition,
//!   invisible characters, kinds of space).
//! - `customers.search_text`: [`search_text`] of the name, email and phone, what
//!   `GET /customers?q=` looks in.
//!
//! SQLite cannot normalise Unicode, so the new columns are filled by Rust code, inside the
//! migration's transaction, on both engines. Existing rows get their display form too (names,
//! emails and phones as the shop would store them today). Two rows whose names become the
//! same name keep both: the oldest keeps its name, each later one is renamed with the first
//! free suffix, "Café T (2)", "Café T (3)", ..., and a warning names it; a name with nothing
//! visible in it becomes "Unnamed product" (or ingredient, customer). The migration never
//! fails on data.

use std::collections::HashSet;

use lemonade_domain::customer::{parse_email, parse_phone, search_text};
use lemonade_domain::text::{display_form, is_blank, name_key};

use crate::conn::{Db, DbError};
use crate::migrations::{Engine, Role, Step, for_engine};
use crate::params;

/// The version-2 steps of this concern for `role`.
pub(crate) fn steps(role: Role, engine: Engine) -> Vec<Step> {
    let add_columns = "ALTER TABLE ingredients ADD COLUMN name_key TEXT;
         ALTER TABLE products ADD COLUMN name_key TEXT;";
    let mut steps = name_key_steps(role, engine, add_columns);
    if role.holds_customers() {
        steps.push(Step::Sql(for_engine(
            "ALTER TABLE customers ADD COLUMN search_text TEXT;",
            engine,
        )));
        steps.push(Step::Code(|db, _| fill_search_text(db)));
    }
    steps
}

/// The steps of a version that computes every stored key again, for `role`: what a change of
/// the text rules (`lemonade_domain::text`, including the Unicode data it is built on) needs,
/// since a key computed by the old rules would let two rows have one name, or refuse a name no
/// row has. Versions 3 and 4 are such versions (see `migrations`). Names that the new
/// rules make one are renamed as version 2 renames them (the oldest keeps its name); the
/// unique indexes are dropped meanwhile, since a row's new key can be another row's old one.
pub(crate) fn rekey_steps(role: Role, engine: Engine) -> Vec<Step> {
    let drop_indexes = "DROP INDEX ingredients_by_name_key;
         DROP INDEX products_by_name_key;";
    let mut steps = name_key_steps(role, engine, drop_indexes);
    if role.holds_customers() {
        steps.push(Step::Code(|db, _| fill_search_text(db)));
    }
    steps
}

/// For a role that holds ingredients and products: `before` (SQL), then every name's key
/// (and display form) written, then the unique indexes on the keys made.
fn name_key_steps(role: Role, engine: Engine, before: &str) -> Vec<Step> {
    if !matches!(role, Role::Monolith | Role::Stock) {
        return Vec::new();
    }
    vec![
        Step::Sql(for_engine(before, engine)),
        Step::Code(|db, _| {
            fill_name_keys(db, "ingredients", "Unnamed ingredient")?;
            fill_name_keys(db, "products", "Unnamed product")
        }),
        Step::Sql(for_engine(
            "CREATE UNIQUE INDEX ingredients_by_name_key ON ingredients (name_key);
             CREATE UNIQUE INDEX products_by_name_key ON products (name_key);",
            engine,
        )),
    ]
}

/// A row's name as it is to be stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Named {
    pub id: String,
    pub name: String,
    pub key: String,
    /// Renamed with a suffix, because an older row has the same name.
    pub renamed: bool,
}

/// The names `rows` (id, name; oldest first) are to have: their display forms, blank ones
/// `unnamed`, and every one a name of its own (see the module's doc). Renamed rows come first,
/// so that writing them in this order never gives two rows one name, not even for a moment
/// (a renamed row's new name is no row's name yet, and a row that keeps its name only takes a
/// name from rows with its key, which are all renamed).
pub(crate) fn plan_names(rows: Vec<(String, String)>, unnamed: &str) -> Vec<Named> {
    let shown = |name: &str| {
        let name = display_form(name).unwrap_or_else(|_| name.to_owned());
        if is_blank(&name) { unnamed.to_owned() } else { name }
    };
    let now: HashSet<String> = rows.iter().map(|(_, name)| name_key(&shown(name))).collect();
    let mut taken = HashSet::new();
    let mut planned: Vec<Named> = rows
        .into_iter()
        .map(|(id, name)| {
            let name = shown(&name);
            let key = name_key(&name);
            if taken.insert(key.clone()) {
                return Named {
                    id,
                    name,
                    key,
                    renamed: false,
                };
            }
            // Finite: `now` and `taken` hold at most two keys per row.
            let (name, key) = (2..)
                .map(|n| format!("{name} ({n})"))
                .map(|candidate| {
                    let key = name_key(&candidate);
                    (candidate, key)
                })
                .find(|(_, key)| !now.contains(key) && !taken.contains(key))
                .expect("a free suffix exists");
            taken.insert(key.clone());
            Named {
                id,
                name,
                key,
                renamed: true,
            }
        })
        .collect();
    planned.sort_by_key(|n| !n.renamed);
    planned
}

fn fill_name_keys(db: &dyn Db, table: &str, unnamed: &str) -> Result<(), DbError> {
    let mut rows = Vec::new();
    db.each(&format!("SELECT id, name FROM {table} ORDER BY id"), &[], &mut |r| {
        rows.push((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
        Ok(())
    })?;
    for named in plan_names(rows, unnamed) {
        if named.renamed {
            tracing::warn!(
                table,
                id = named.id,
                name = named.name,
                "renamed: an older row has the same name"
            );
        }
        db.run(
            &format!("UPDATE {table} SET name = ?2, name_key = ?3 WHERE id = ?1"),
            params![named.id, named.name, named.key],
        )?;
    }
    Ok(())
}

fn fill_search_text(db: &dyn Db) -> Result<(), DbError> {
    type Row = (String, String, Option<String>, Option<String>);
    let mut rows: Vec<Row> = Vec::new();
    db.each("SELECT id, name, email, phone FROM customers", &[], &mut |r| {
        rows.push((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        Ok(())
    })?;
    for (id, name, email, phone) in rows {
        let name = display_form(&name).unwrap_or(name);
        let name = if is_blank(&name) {
            "Unnamed customer".to_owned()
        } else {
            name
        };
        // A stored value the rules of today refuse is kept as it was: it is the person's.
        let email = email.and_then(|e| parse_email(&e).unwrap_or(Some(e)));
        let phone = phone.and_then(|p| parse_phone(&p).unwrap_or(Some(p)));
        let search = search_text(&name, email.as_deref(), phone.as_deref());
        db.run(
            "UPDATE customers SET name = ?2, email = ?3, phone = ?4, search_text = ?5 WHERE id = ?1",
            params![id, name, email, phone, search],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::migrations::{SCHEMA_VERSION, migrate_role, migrate_role_to};

    fn rows(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("id{i}"), n.to_string()))
            .collect()
    }

    #[test]
    fn the_oldest_keeps_a_name_and_later_ones_get_the_first_free_suffix() {
        let planned = plan_names(
            rows(&[
                "Café T",
                "Cafe\u{301} T",
                "café t",
                "Café T (2)",
                "\u{200b}",
                "Lemonade\u{a0}",
            ]),
            "Unnamed product",
        );
        let names: Vec<(&str, &str, bool)> = planned
            .iter()
            .map(|n| (n.id.as_str(), n.name.as_str(), n.renamed))
            .collect();
        assert_eq!(
            names,
            [
                ("id1", "Café T (3)", true),
                ("id2", "café t (4)", true),
                ("id0", "Café T", false),
                ("id3", "Café T (2)", false),
                ("id4", "Unnamed product", false),
                ("id5", "Lemonade", false),
            ]
        );
        let keys: HashSet<&str> = planned.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys.len(), planned.len());
    }

    fn insert_v1_rows(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO recipe_versions (id, product_id, recipe, created_at) VALUES (1, 'p1', '[]', 1);
             INSERT INTO ingredients (id, name, unit, on_hand, reorder_level, created_at) VALUES
                 ('i1', 'Lemons', 'piece', 0, 0, 1), ('i2', 'LEMONS', 'piece', 0, 0, 2), ('i3', 'Sugar', 'g', 0, 0, 3);",
        )
        .unwrap();
        for (id, name) in [
            ("p1", "Café T"),
            ("p2", "Cafe\u{301} T"),
            ("p3", "Café\u{200b} T"),
            ("p4", "Café\u{a0}T"),
            ("p5", "Grandma's lemonade"),
            ("p6", "Grandma’s lemonade"),
            ("p7", "Pink\u{2800}lemonade"),
            ("p8", "Lemon trio 🍋\u{200d}🍋"),
            ("p9", "Iced–tea"),
        ] {
            conn.execute(
                "INSERT INTO products (id, name, price, active, recipe_version, created_at, updated_at)
                 VALUES (?1, ?2, 100, 1, 1, 1, 1)",
                (id, name),
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO customers (id, name, email, phone, points, created_at, updated_at) VALUES
                 ('c1', 'Zoë\u{a0}Müller\u{200b}', ' Zoe@Example.ORG', '+44 7700 900123', 0, 1, 1),
                 ('c2', 'Søren\u{2800}Ærø', 'ＳＯＲＥＮ＠ＥＸＡＭＰＬＥ.ORG', NULL, 0, 2, 2);",
        )
        .unwrap();
    }

    fn column(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_version_1_database_gets_keys_and_its_duplicate_names_are_renamed() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_role_to(&mut conn, Role::Monolith, 1).unwrap();
        insert_v1_rows(&conn);
        assert_eq!(migrate_role(&mut conn, Role::Monolith).unwrap(), 1);
        assert_eq!(
            column(&conn, "SELECT name FROM products ORDER BY id"),
            [
                "Café T",
                "Café T (2)",
                "Café T (3)",
                "Café T (4)",
                "Grandma's lemonade",
                "Grandma’s lemonade (2)",
                "Pink lemonade",
                "Lemon trio 🍋🍋",
                "Iced–tea",
            ]
        );
        assert_eq!(
            column(
                &conn,
                "SELECT name_key FROM products WHERE id IN ('p6', 'p9') ORDER BY id"
            ),
            ["grandma's lemonade (2)", "iced-tea"]
        );
        assert_eq!(
            column(&conn, "SELECT name FROM ingredients ORDER BY id"),
            ["Lemons", "LEMONS (2)", "Sugar"]
        );
        assert_eq!(
            column(&conn, "SELECT name_key FROM ingredients ORDER BY id"),
            ["lemons", "lemons (2)", "sugar"]
        );
        assert_eq!(
            column(
                &conn,
                "SELECT name || '|' || email || '|' || search_text FROM customers ORDER BY id"
            ),
            [
                "Zoë Müller|Zoe@example.org|zoe muller\nzoe@example.org\n447700900123",
                "Søren Ærø|SOREN@example.org|soren aero\nsoren@example.org\n"
            ]
        );
        let audit = crate::audit::audit(&conn).unwrap();
        let text_rules: Vec<_> = audit
            .violations
            .iter()
            .filter(|v| matches!(v.rule, "name-keys-match-names" | "search-text-matches-customer"))
            .collect();
        assert!(text_rules.is_empty(), "{}", audit.to_text());
        let same = conn.execute(
            "INSERT INTO products (id, name, name_key, price, active, recipe_version, created_at, updated_at)
             VALUES ('p9', 'CAFÉ T', 'café t', 100, 1, 1, 1, 1)",
            [],
        );
        assert!(same.is_err(), "the key is unique in the database");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// A database whose keys were computed by older text rules gets them computed again: two
    /// names the rules of today read as one become two names (the oldest keeps its name), and
    /// customer search finds what it finds today.
    #[test]
    fn version_3_computes_the_keys_of_older_rules_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_role_to(&mut conn, Role::Monolith, 2).unwrap();
        // As version 2's rules left them: "Мix" with a Cyrillic М was a name of its own.
        conn.execute_batch(
            "INSERT INTO recipe_versions (id, product_id, recipe, created_at)
                 VALUES (1, 'p1', '[]', 1), (2, 'p2', '[]', 2);
             INSERT INTO products (id, name, name_key, price, active, recipe_version, created_at, updated_at)
                 VALUES ('p1', 'Mix', 'mix', 100, 1, 1, 1, 1), ('p2', 'Мix', 'мix', 100, 1, 2, 2, 2);
             INSERT INTO ingredients (id, name, name_key, unit, reorder_level, on_hand, created_at)
                 VALUES ('i1', 'Кiwi', 'кiwi', 'g', 0, 0, 1), ('i2', 'Kiwi', 'kiwi', 'g', 0, 0, 2);
             INSERT INTO customers (id, name, points, anonymised_at, created_at, updated_at, search_text)
                 VALUES ('c1', 'Саша', 0, NULL, 1, 1, 'саша');",
        )
        .unwrap();
        assert_eq!(migrate_role(&mut conn, Role::Monolith).unwrap(), 2);
        assert_eq!(names(&conn, "products"), pairs(&[("p1", "Mix"), ("p2", "Мix (2)")]));
        assert_eq!(
            names(&conn, "ingredients"),
            pairs(&[("i1", "Кiwi"), ("i2", "Kiwi (2)")])
        );
        let search: String = conn
            .query_row("SELECT search_text FROM customers WHERE id = 'c1'", [], |r| r.get(0))
            .unwrap();
        assert!(search.contains(&lemonade_domain::text::search_key("Са")), "{search}");
        let audit = crate::audit::audit(&conn).unwrap();
        assert!(audit.violations.is_empty(), "{}", audit.to_text());
    }

    /// Each row's (id, name) of `table`, by id.
    fn names(conn: &Connection, table: &str) -> Vec<(String, String)> {
        let sql = format!("SELECT id, name FROM {table} ORDER BY id");
        conn.prepare(&sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|&(a, b)| (a.to_owned(), b.to_owned())).collect()
    }

    /// Version 4's rules: a Greek word and the Cyrillic word that looks like it letter for
    /// letter are one name, and so are the look-alikes of a keyboard sign.
    #[test]
    fn version_4_makes_greek_and_cyrillic_look_alikes_and_sign_look_alikes_one_name() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_role_to(&mut conn, Role::Monolith, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO recipe_versions (id, product_id, recipe, created_at)
                 VALUES (1, 'p1', '[]', 1), (2, 'p2', '[]', 2), (3, 'p3', '[]', 3), (4, 'p4', '[]', 4);
             INSERT INTO products (id, name, name_key, price, active, recipe_version, created_at, updated_at)
                 VALUES ('p1', 'ПІТА', 'піта', 100, 1, 1, 1, 1), ('p2', 'ΠΙΤΑ', 'πιτα', 100, 1, 2, 2, 2),
                        ('p3', 'Tea·Lemon', 'tea·lemon', 100, 1, 3, 3, 3), ('p4', 'Tea⋅Lemon', 'tea⋅lemon', 100, 1, 4, 4, 4);",
        )
        .unwrap();
        assert_eq!(migrate_role(&mut conn, Role::Monolith).unwrap(), 3);
        assert_eq!(
            names(&conn, "products"),
            pairs(&[
                ("p1", "ПІТА"),
                ("p2", "ΠΙΤΑ (2)"),
                ("p3", "Tea·Lemon"),
                ("p4", "Tea⋅Lemon (2)")
            ])
        );
        let audit = crate::audit::audit(&conn).unwrap();
        assert!(audit.violations.is_empty(), "{}", audit.to_text());
    }

    #[test]
    fn each_service_gets_the_keys_of_what_it_holds() {
        for role in [Role::Stock, Role::Crm, Role::Orders, Role::Coordinator] {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate_role_to(&mut conn, role, 1).unwrap();
            assert_eq!(migrate_role(&mut conn, role).unwrap(), 1, "{role:?}");
        }
    }
}
