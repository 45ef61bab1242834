//! The schema snapshots shared by the SQLite (`schema.rs`) and PostgreSQL (`postgres.rs`) tests.

/// Compares `actual` with the committed snapshot `name` in `tests/schema/`, or writes it
/// when `UPDATE_SCHEMA_SNAPSHOT` is set.
pub fn compare(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schema")
        .join(name);
    if std::env::var_os("UPDATE_SCHEMA_SNAPSHOT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let first = expected.lines().zip(actual.lines()).position(|(e, a)| e != a);
    assert!(
        expected == actual,
        "the schema differs from {} at line {:?}: expected {:?}, found {:?}",
        path.display(),
        first.map(|i| i + 1),
        first.and_then(|i| expected.lines().nth(i)),
        first.and_then(|i| actual.lines().nth(i)),
    );
}
