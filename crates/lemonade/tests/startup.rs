//! Starting the real binary: every flag is checked before anything starts or is created, and
//! the one error names the flag and what it allows; a SQLite database has one writing process
//! at a time, and a second one refuses to start naming the first; a start that fails (a busy
//! port, a held database) leaves no data folder behind; a log written to a file is plain text.

mod binary;

use std::time::Duration;

use binary::{Server, free_port, lemonade_command, run_bounded, serve_command};

/// Long enough for a refusal; a command still running then has started when it should not.
const REFUSED_WITHIN: Duration = Duration::from_secs(20);

/// Runs `lemonade <args>` over a fresh folder `data` (the `{data}` argument) and asserts that
/// it refuses with one error naming every text of `names`, and creates nothing.
fn assert_refused(args: &[&str], names: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = lemonade_command();
    for arg in args {
        command.arg(arg.replace("{data}", &data.display().to_string()));
    }
    let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
    let status = status.unwrap_or_else(|| panic!("lemonade {args:?} started:\n{stderr}"));
    assert!(!status.success(), "lemonade {args:?} succeeded:\n{stderr}");
    for name in names {
        assert!(stderr.contains(name), "lemonade {args:?}: no {name:?} in\n{stderr}");
    }
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "lemonade {args:?}: one error, not a trail of them:\n{stderr}"
    );
    assert!(!data.exists(), "lemonade {args:?} created {}", data.display());
}

#[test]
fn cluster_refuses_a_bad_flag_before_starting_anything_naming_the_flag_and_its_range() {
    let addr = format!("127.0.0.1:{}", free_port());
    let cluster = |extra: &[&str]| {
        let mut args = vec!["cluster", "--addr", &addr, "--data", "{data}"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let cases: &[(&[&str], &[&str])] = &[
        (&["--order-deadline-ms", "1"], &["--order-deadline-ms", "100..=60000"]),
        (
            &["--order-deadline-ms", "60001"],
            &["--order-deadline-ms", "100..=60000"],
        ),
        (&["--lease-ms", "999"], &["--lease-ms", "1000..=600000"]),
        (&["--lease-ms", "600001"], &["--lease-ms", "1000..=600000"]),
        (
            &["--lease-ms", "2000", "--order-deadline-ms", "3000"],
            &["--lease-ms", "--order-deadline-ms"],
        ),
        (&["--services-port", "65534"], &["--services-port", "1..=65533"]),
        (&["--services-port", "0"], &["--services-port", "1..=65533"]),
        (&["--token", "too-short"], &["--token", "16"]),
        (
            &["--token", "abcdefabcdefabcdef  "],
            &["--token", "bearer token", "' '"],
        ),
        (&["--postgres", "mysql://x"], &["--postgres", "postgres://"]),
        (&["--log", "lemonade=loud"], &["--log"]),
        (&["--batch-max", "0"], &["--batch-max", "1..=4096"]),
        (
            &["--minor-units-per-point", "0"],
            &["--minor-units-per-point", "1..=1000000"],
        ),
        (&["--rate-per-s", "0"], &["--rate-per-s", "1..=10000000"]),
    ];
    for (extra, names) in cases {
        let args = cluster(extra);
        assert_refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), names);
    }
    assert_refused(
        &["cluster", "--addr", "127.0.0.1:0", "--data", "{data}"],
        &["--addr", "port"],
    );
    // The services' ports may not include the coordinator's.
    let port = free_port();
    let (addr, services) = (format!("127.0.0.1:{port}"), (port - 1).to_string());
    assert_refused(
        &[
            "cluster",
            "--addr",
            &addr,
            "--services-port",
            &services,
            "--data",
            "{data}",
        ],
        &["--services-port", "--addr"],
    );
}

/// A setting a child would read from the environment is the supervisor's to check: it is
/// refused before anything starts, not by each child in turn.
#[test]
fn cluster_refuses_a_bad_setting_in_its_environment_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = lemonade_command();
    command
        .args(["cluster", "--addr", &format!("127.0.0.1:{}", free_port()), "--data"])
        .arg(&data)
        .env("LEMONADE_BATCH_MAX", "0");
    let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    assert!(
        stderr.contains("--batch-max") && stderr.contains("1..=4096"),
        "{stderr}"
    );
    assert!(!data.exists(), "it created {}", data.display());
}

/// A token given in the environment is checked as its flag is, and the error names both.
#[test]
fn a_token_from_the_environment_that_a_bearer_header_cannot_carry_is_refused_naming_it() {
    let addr = format!("127.0.0.1:{}", free_port());
    let cases: [(&[&str], &str, &str); 4] = [
        (&["serve"], "LEMONADE_TOKEN", "--token (LEMONADE_TOKEN)"),
        (&["cluster"], "LEMONADE_TOKEN", "--token (LEMONADE_TOKEN)"),
        (
            &["cluster"],
            "LEMONADE_CLUSTER_TOKEN",
            "--cluster-token (LEMONADE_CLUSTER_TOKEN)",
        ),
        (
            &["serve", "--role", "stock"],
            "LEMONADE_CLUSTER_TOKEN",
            "--cluster-token (LEMONADE_CLUSTER_TOKEN)",
        ),
    ];
    for (args, variable, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut command = lemonade_command();
        command
            .args(args)
            .args(["--addr", &addr, "--data"])
            .arg(&data)
            .env(variable, "abcdefabcdefabcdef  ");
        let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
        assert!(status.is_some_and(|s| !s.success()), "{args:?} started:\n{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("bearer token"),
            "{args:?}: {stderr}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
}

#[test]
fn serve_refuses_a_bad_flag_before_starting_anything_naming_the_flag() {
    let addr = format!("127.0.0.1:{}", free_port());
    let token = "a-cluster-token-long-enough";
    let peers = [
        "--stock-addr",
        "127.0.0.1:9",
        "--orders-addr",
        "127.0.0.1:9",
        "--crm-addr",
        "127.0.0.1:9",
    ];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--batch-max", "0"], &["--batch-max", "1..=4096"]),
        (vec!["--minor-units-per-point", "0"], &["--minor-units-per-point"]),
        (
            vec!["--order-deadline-ms", "1"],
            &["--order-deadline-ms", "100..=60000"],
        ),
        (vec!["--lease-ms", "1"], &["--lease-ms", "1000..=600000"]),
        (vec!["--rate-per-s", "0"], &["--rate-per-s", "1..=10000000"]),
        (vec!["--token", "too-short"], &["--token", "16"]),
        (vec!["--token", "abcdefabcdefabcdef  "], &["--token", "bearer token"]),
        (
            vec!["--role", "stock", "--cluster-token", "short"],
            &["--cluster-token", "16"],
        ),
        (
            vec!["--role", "stock", "--cluster-token", "a-cluster-token-long-enough "],
            &["--cluster-token", "bearer token"],
        ),
        (
            [
                &["--role", "coordinator", "--cluster-token", token][..],
                &peers,
                &["--lease-ms", "2000", "--order-deadline-ms", "3000"],
            ]
            .concat(),
            &["--lease-ms", "--order-deadline-ms"],
        ),
        (vec!["--database-url", "postgres://x/y"], &["--database-url"]),
    ];
    for (extra, names) in cases {
        let mut args = vec!["serve", "--addr", &addr, "--data", "{data}"];
        args.extend(extra);
        assert_refused(&args, names);
    }
    // A --data that is a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let mut command = lemonade_command();
    command.args(["serve", "--addr", &addr, "--data"]).arg(&file);
    let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    assert!(stderr.contains("--data"), "{stderr}");
}

#[test]
fn bench_refuses_a_bad_flag_naming_the_flag_and_its_range() {
    for (extra, names) in [
        (["--orders", "0"], ["--orders", "1..=10000000"]),
        (["--concurrency", "0"], ["--concurrency", "1..=100000"]),
        (["--timeout-ms", "0"], ["--timeout-ms", "1..=600000"]),
    ] {
        let mut args = vec!["bench", "--url", "http://127.0.0.1:9"];
        args.extend(extra);
        assert_refused(&args, &names);
    }
}

/// The port is taken: `serve` fails on it before it creates its data folder or the demo shop.
#[test]
fn serve_on_a_port_in_use_refuses_and_creates_no_database() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (status, stderr) = run_bounded(serve_command(&data, port), REFUSED_WITHIN);
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    assert!(
        stderr.contains(&port.to_string()) && stderr.contains("--addr"),
        "{stderr}"
    );
    assert!(!data.exists(), "it created {}", data.display());
}

/// A data folder holds one shop (found by a tester: `serve` on a cluster's folder made a
/// monolith beside it, and `check` audited that one alone): a start of the other kind is
/// refused, naming what the folder holds and the command that starts it, and adds nothing.
#[test]
fn a_start_of_the_other_kind_of_shop_on_a_folder_is_refused_naming_the_shop_there() {
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    for (holds, args, names) in [
        (
            "stock.db",
            vec!["serve", "--addr", &addr],
            ["a cluster's databases (stock.db)", "lemonade cluster --data"],
        ),
        (
            "lemonade.db",
            vec!["cluster", "--addr", &addr],
            ["a monolith's database (lemonade.db)", "lemonade serve --data"],
        ),
        (
            "lemonade.db",
            vec![
                "serve",
                "--role",
                "stock",
                "--cluster-token",
                "0123456789abcdef",
                "--addr",
                &addr,
            ],
            ["a monolith's database (lemonade.db)", "lemonade serve --data"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(holds), b"").unwrap();
        let mut command = lemonade_command();
        command.args(&args).arg("--data").arg(dir.path());
        let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
        assert!(status.is_some_and(|s| !s.success()), "{args:?} started:\n{stderr}");
        for name in names {
            assert!(stderr.contains(name), "{args:?}: no {name:?} in\n{stderr}");
        }
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, [holds], "{args:?} left files");
    }
    // A folder holding both: each start says so (found by a tester: each sent to the other).
    let both = tempfile::tempdir().unwrap();
    for file in ["lemonade.db", "stock.db"] {
        std::fs::write(both.path().join(file), b"").unwrap();
    }
    for args in [vec!["serve", "--addr", &addr], vec!["cluster", "--addr", &addr]] {
        let mut command = lemonade_command();
        command.args(&args).arg("--data").arg(both.path());
        let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
        assert!(status.is_some_and(|s| !s.success()), "{args:?} started:\n{stderr}");
        assert!(stderr.contains("holds two shops"), "{args:?}:\n{stderr}");
    }
}

/// Two monoliths on one database: the second refuses, naming the first, which keeps serving
/// (and writing); once the first stops, a new one starts on the same folder.
#[tokio::test]
async fn a_second_serve_on_the_same_database_refuses_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Server::start(&data, dir.path(), "first").await;
    let http = reqwest::Client::new();

    let second_port = free_port();
    let (status, stderr) = run_bounded(serve_command(&data, second_port), REFUSED_WITHIN);
    assert!(
        status.is_some_and(|s| !s.success()),
        "a second writer started:\n{stderr}"
    );
    let first_addr = first.base.trim_end_matches("/api/v1").to_owned();
    for named in [
        "lemonade.db is in use by lemonade serve",
        &format!("pid {}", first.pid()),
        &first_addr,
        "--data",
    ] {
        assert!(stderr.contains(named), "no {named:?} in\n{stderr}");
    }
    assert!(
        http.get(format!("http://127.0.0.1:{second_port}/health"))
            .send()
            .await
            .is_err(),
        "the second one listens"
    );

    // The first one still serves and writes.
    let ingredient = http
        .get(format!("{}/ingredients", first.base))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let restocked = http
        .post(format!("{}/ingredients/{ingredient}/restock", first.base))
        .json(&serde_json::json!({"quantity": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(restocked.status(), 200, "{}", restocked.text().await.unwrap());

    assert!(first.terminate().await.success());
    let _next = Server::start(&data, dir.path(), "next").await;
}

/// The lock is the database file's, not its path's: a second serve on a hard link to a
/// running shop's database in another folder, or on a symlink to it, or on a path to its
/// folder through `..`, refuses, naming the first and the path it opened the file by, and
/// leaves its folder as it found it (no lock file); the first keeps serving.
#[tokio::test]
async fn a_second_serve_on_another_path_to_the_same_database_file_refuses_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data, dir.path(), "first").await;
    let database = data.join("lemonade.db");

    let hard = dir.path().join("hard");
    std::fs::create_dir(&hard).unwrap();
    std::fs::hard_link(&database, hard.join("lemonade.db")).unwrap();
    let soft = dir.path().join("soft");
    std::fs::create_dir(&soft).unwrap();
    std::os::unix::fs::symlink(&database, soft.join("lemonade.db")).unwrap();
    let dotted = hard.join("..").join("data");

    for other in [&hard, &soft, &dotted] {
        let before: Vec<_> = std::fs::read_dir(other)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let (status, stderr) = run_bounded(serve_command(other, free_port()), REFUSED_WITHIN);
        assert!(
            status.is_some_and(|s| !s.success()),
            "a second writer started on {}:\n{stderr}",
            other.display()
        );
        for named in [
            "lemonade.db is in use by lemonade serve",
            &format!("pid {}", first.pid()),
            "--data",
        ] {
            assert!(stderr.contains(named), "{}: no {named:?} in\n{stderr}", other.display());
        }
        if other != &dotted {
            let through = format!("through {}", database.canonicalize().unwrap().display());
            assert!(stderr.contains(&through), "the path the first opened it by: {stderr}");
        }
        let after: Vec<_> = std::fs::read_dir(other)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(after, before, "{} left as it was", other.display());
    }

    let http = reqwest::Client::new();
    let health = http.get(format!("{}/health", first.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "the first still serves");
}

/// `lemonade cluster` on a folder a service's database of which another process writes:
/// refused before anything starts, naming that process.
#[tokio::test]
async fn a_cluster_on_a_database_in_use_refuses_naming_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("stock.log")).unwrap();
    let stock = lemonade_command()
        .args([
            "serve",
            "--role",
            "stock",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--data",
        ])
        .arg(&data)
        .args(["--cluster-token", "a-cluster-token-long-enough"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let stock = KillOnDrop(stock);
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    while http
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stock service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut command = lemonade_command();
    command
        .args(["cluster", "--addr", &format!("127.0.0.1:{}", free_port()), "--data"])
        .arg(&data);
    let (status, stderr) = run_bounded(command, REFUSED_WITHIN);
    assert!(status.is_some_and(|s| !s.success()), "the cluster started:\n{stderr}");
    for named in [
        "stock.db is in use by lemonade serve --role stock",
        &format!("pid {}", stock.0.id()),
    ] {
        assert!(stderr.contains(named), "no {named:?} in\n{stderr}");
    }
    let mut files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("stock.db"))
        .collect();
    files.sort();
    assert_eq!(files, Vec::<String>::new(), "the cluster created databases");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A log written to a file has no terminal colour codes: the monolith's, and the cluster
/// supervisor's with what it relays from its children.
#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = lemonade_command();
    command
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("data"));
    let log = run_until_up_then_stop(command, port, &dir.path().join("monolith.log")).await;
    assert_plain(&log, "the monolith's log");

    let port = free_port();
    let mut command = lemonade_command();
    command
        .args(["cluster", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("cluster"));
    let log = run_until_up_then_stop(command, port, &dir.path().join("cluster.log")).await;
    assert!(
        String::from_utf8_lossy(&log).contains("[stock]"),
        "the children's log is relayed:\n{}",
        String::from_utf8_lossy(&log)
    );
    assert_plain(&log, "the cluster's log");
}

/// Runs `command` (at log level info, its log to `log_path`) until `/api/v1/health` on
/// `port` answers 200, then stops it with SIGTERM: its log.
async fn run_until_up_then_stop(mut command: std::process::Command, port: u16, log_path: &std::path::Path) -> Vec<u8> {
    let mut child = command
        .env("LEMONADE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log_path).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let up = loop {
        if http
            .get(format!("http://127.0.0.1:{port}/api/v1/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break true;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A graceful stop: a supervisor stops its children, which log that too.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stopping = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && stopping.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read(log_path).unwrap();
    assert!(up, "it did not come up:\n{}", String::from_utf8_lossy(&log));
    log
}

fn assert_plain(log: &[u8], what: &str) {
    assert!(!log.is_empty(), "{what} is empty");
    assert!(
        !log.contains(&0x1b),
        "{what} has escape codes:\n{}",
        String::from_utf8_lossy(log)
    );
}

/// A child that cannot come up at all fails the cluster's first start, and the one error
/// says which child and why (its own last error, not only its exit status).
#[test]
fn a_cluster_whose_service_cannot_start_says_which_and_why_in_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = lemonade_command();
    command
        .args(["cluster", "--addr", &format!("127.0.0.1:{}", free_port()), "--data"])
        .arg(dir.path().join("data"))
        // Nothing listens on port 1: the first service cannot open its database.
        .args(["--postgres", "postgres://nobody@127.0.0.1:1/lemonade"]);
    let (status, stderr) = run_bounded(command, Duration::from_secs(60));
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    let error = stderr.lines().filter(|l| l.starts_with("error")).collect::<Vec<_>>();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains("stock database") && error[0].contains("cannot connect to PostgreSQL"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());
}

/// Every file of `folder` with its length and a hash of its bytes, sorted by name.
fn snapshot(folder: &std::path::Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            (
                e.file_name().to_string_lossy().into_owned(),
                bytes.len(),
                hasher.finish(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A first `lemonade cluster` start that fails in a folder that exists leaves the folder as
/// it found it: an empty `stock.db` stays empty (not migrated and filled with the demo shop),
/// no lock file is left, the bad database is untouched. A database that cannot be opened at
/// all is found before any process starts, and named; one that fails only in its process
/// (here a CRM database whose migration fails) is put back after the others stopped.
#[test]
fn a_failed_first_cluster_start_leaves_an_existing_folder_as_it_found_it() {
    use lemonade_store::migrations::{Role, migrate_role_to};
    /// A case's name, how to make its `crm.db`, and what its one error must say.
    type Case = (&'static str, fn(&std::path::Path), &'static [&'static str]);
    let cases: [Case; 2] = [
        (
            "not-sqlite",
            |crm| std::fs::write(crm, b"this is not a database").unwrap(),
            &["crm.db: file is not a database"],
        ),
        (
            "migration-fails",
            |crm| {
                let mut conn = rusqlite::Connection::open(crm).unwrap();
                migrate_role_to(&mut conn, Role::Crm, 1).unwrap();
                let tables: Vec<String> = conn
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                for table in tables {
                    conn.execute_batch(&format!("DROP TABLE {table}")).unwrap();
                }
                conn.execute_batch("PRAGMA journal_mode = DELETE").unwrap();
            },
            &["crm process"],
        ),
    ];
    for (name, make_crm, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("stock.db"), b"").unwrap();
        make_crm(&data.join("crm.db"));
        let before = snapshot(&data);

        let mut command = lemonade_command();
        command
            .args(["cluster", "--addr", &format!("127.0.0.1:{}", free_port()), "--data"])
            .arg(&data);
        let (status, stderr) = run_bounded(command, Duration::from_secs(60));
        assert!(status.is_some_and(|s| !s.success()), "{name}: it started:\n{stderr}");
        let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{name}: {stderr}");
        for text in expected {
            assert!(errors[0].contains(text), "{name}: no {text:?} in {}", errors[0]);
        }
        // Every file as it was; the CRM database that failed in its process may have been
        // switched to WAL mode (two bytes of its header) before its migration failed.
        let without_crm = |files: Vec<(String, usize, u64)>| {
            files
                .into_iter()
                .map(|(file, len, hash)| (file.clone(), len, if file == "crm.db" { 0 } else { hash }))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            without_crm(snapshot(&data)),
            without_crm(before),
            "{name}: the folder changed:\n{stderr}"
        );
    }
}

/// The same for `serve`: a database that cannot be opened leaves no lock file behind.
#[test]
fn serve_on_a_database_it_cannot_open_leaves_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("lemonade.db"), b"this is not a database").unwrap();
    let before = snapshot(&data);
    let (status, stderr) = run_bounded(serve_command(&data, free_port()), REFUSED_WITHIN);
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    assert!(
        stderr.contains("lemonade.db") && stderr.contains("file is not a database"),
        "{stderr}"
    );
    assert_eq!(snapshot(&data), before, "{stderr}");
}

/// On PostgreSQL too, every service's database is checked before any is created or written:
/// a CRM database that holds another service's tables stops the start at once, naming it,
/// and the stock database, which did not exist, is not created.
#[test]
fn a_cluster_on_postgres_with_a_foreign_database_refuses_before_creating_any() {
    use lemonade_store::migrations::Role;
    let base = lemonade_store::postgres::test_base("f");
    let crm = lemonade_store::postgres::role_url(&base, Role::Crm).unwrap();
    let stock = lemonade_store::postgres::role_url(&base, Role::Stock).unwrap();
    lemonade_store::Database::open_postgres_as(&crm, Role::Orders, Default::default(), "a test")
        .expect("make an orders database under CRM's name");
    let dir = tempfile::tempdir().unwrap();
    let mut command = lemonade_command();
    command
        .args(["cluster", "--addr", &format!("127.0.0.1:{}", free_port()), "--data"])
        .arg(dir.path().join("data"))
        .args(["--postgres", &base]);
    let (status, stderr) = run_bounded(command, Duration::from_secs(60));
    let stock_after = lemonade_store::postgres::check_database(&stock, Role::Stock);
    let _ = lemonade_store::postgres::drop_cluster_databases(&base);
    assert!(status.is_some_and(|s| !s.success()), "it started:\n{stderr}");
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("crm database") && errors[0].contains("belongs to orders, not to crm"),
        "{stderr}"
    );
    assert!(matches!(stock_after, Ok(None)), "the stock database: {stock_after:?}");
}
