//! Names and their keys: every ingredient and product name has the key of its name (the key
//! is what makes two names that read the same one name, and the database keeps it unique),
//! and every customer the search text of their details. The keys are the domain's
//! (`lemonade_domain::text`, `lemonade_domain::customer`), recomputed from the stored text.

use lemonade_domain::text::name_key;

use crate::rule::{Audit, Finding, Group, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// The tables whose names have a key.
const NAMED_TABLES: [&str; 2] = ["ingredients", "products"];

/// A row of a named table, with its stored key.
struct Named {
    table: &'static str,
    id: String,
    name: String,
    key: Option<String>,
}

const NAME_RULES: &[Rule<Named>] = &[Rule {
    name: "name-keys-match-names",
    check: name_key_matches,
}];

fn name_key_matches(n: &Named) -> Option<Finding> {
    let (name, key) = (&n.name, &n.key);
    (key.as_deref() != Some(name_key(name).as_str()))
        .then(|| Finding::new(format!("{} {}", n.table, n.id), format!("{name:?} has the key {key:?}")))
}

/// A customer's details, with their stored search text.
struct Searchable {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    text: Option<String>,
}

const SEARCH_RULES: &[Rule<Searchable>] = &[Rule {
    name: "search-text-matches-customer",
    check: search_text_matches,
}];

fn search_text_matches(c: &Searchable) -> Option<Finding> {
    let expected = lemonade_domain::customer::search_text(&c.name, c.email.as_deref(), c.phone.as_deref());
    (c.text.as_deref() != Some(expected.as_str()))
        .then(|| Finding::new(format!("customer {}", c.id), "is not found by its details"))
}

fn read_named(audit: &Audit<'_>, table: &'static str) -> rusqlite::Result<Vec<Named>> {
    rows(audit.conn, &format!("SELECT id, name, name_key FROM {table}"), |r| {
        Ok(Named {
            table,
            id: r.get(0)?,
            name: r.get(1)?,
            key: r.get(2)?,
        })
    })
}

fn read_searchable(audit: &Audit<'_>) -> rusqlite::Result<Vec<Searchable>> {
    rows(
        audit.conn,
        "SELECT id, name, email, phone, search_text FROM customers",
        |r| {
            Ok(Searchable {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                phone: r.get(3)?,
                text: r.get(4)?,
            })
        },
    )
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    for table in NAMED_TABLES {
        let named = read_named(audit, table)?;
        audit.report.check_rows(&named, NAME_RULES);
    }
    let customers = read_searchable(audit)?;
    audit.report.check_rows(&customers, SEARCH_RULES);
    Ok(())
}

fn rules() -> Vec<&'static str> {
    names(NAME_RULES).chain(names(SEARCH_RULES)).collect()
}
