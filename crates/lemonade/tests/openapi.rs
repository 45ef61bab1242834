//! The committed `openapi.json` is the document the server serves. When the API changes,
//! regenerate it with `UPDATE_OPENAPI=1 cargo test -p lemonade --test openapi` and commit it.

mod support;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_openapi_json_matches_what_the_server_serves() {
    let app = support::spawn_local(|_| {}).await.expect("start a test server");
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let served = reply.text;
    serde_json::from_str::<serde_json::Value>(&served).expect("the served document is JSON");

    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(COMMITTED, &served).expect("write openapi.json");
        eprintln!("wrote {COMMITTED}");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != served {
        let line = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| committed.lines().count().min(served.lines().count()) + 1, |n| n + 1);
        let what = if committed.is_empty() {
            "missing".to_owned()
        } else {
            format!("stale (first difference at line {line})")
        };
        panic!(
            "openapi.json is {what}: run `UPDATE_OPENAPI=1 cargo test -p lemonade --test openapi` \
             and commit openapi.json"
        );
    }
}
