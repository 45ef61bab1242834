//! Starting the real `lemonade` binary from a test: `lemonade serve` on a loopback port over a
//! data folder, configured only by its flags (no `LEMONADE_*` setting leaks in from the
//! environment that runs the tests), and a guard that kills it when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub const BIN: &str = env!("CARGO_BIN_EXE_lemonade");

/// A `lemonade serve` command for `127.0.0.1:port` over `data`, quiet, with no standard input
/// or output; the caller decides where its log goes and spawns it.
pub fn serve_command(data: &Path, port: u16) -> Command {
    let mut command = lemonade_command();
    command
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("LEMONADE_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// The binary with no arguments yet, no standard input, and no `LEMONADE_*` setting from the
/// environment that runs the tests.
pub fn lemonade_command() -> Command {
    let mut command = Command::new(BIN);
    command.stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEMONADE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` to its end, or kills it after `within`: its exit status (`None` if it was
/// still running) and what it wrote to its standard error.
#[allow(dead_code)] // each test crate compiles this module; not all run commands to the end
pub fn run_bounded(mut command: Command, within: Duration) -> (Option<ExitStatus>, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let stderr_path = dir.path().join("stderr");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("create the stderr file"))
        .spawn()
        .expect("start lemonade");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll lemonade") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&stderr_path).unwrap_or_default())
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A running `lemonade serve`; killed (SIGKILL) when dropped, so a failing test leaves no
/// server behind.
pub struct Server {
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary on `data` and waits until `/health` answers 200. Retries with another
    /// port if the one picked was taken in between.
    pub async fn start(data: &Path, logs: &Path, name: &str) -> Server {
        let mut last_failure = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = logs.join(format!("{name}-{attempt}.log"));
            let log_file = std::fs::File::create(&log).expect("create the server log");
            let child = serve_command(data, port)
                .stderr(Stdio::from(log_file))
                .spawn()
                .expect("start lemonade serve");
            let mut server = Server {
                child,
                base: format!("http://127.0.0.1:{port}/api/v1"),
                log,
            };
            match server.wait_healthy().await {
                Ok(()) => return server,
                Err(e) => last_failure = e,
            }
        }
        panic!("the server did not start: {last_failure}");
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build a client");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return Err(format!("it exited with {status}; log:\n{}", self.log_text()));
            }
            if let Ok(r) = client.get(format!("{}/health", self.base)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "/health not 200 within {STARTUP_TIMEOUT:?}; log:\n{}",
            self.log_text()
        ))
    }

    /// The server's process id.
    #[allow(dead_code)] // each test crate compiles this module; not all ask
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap it.
    #[allow(dead_code)] // each test crate compiles this module; only the crash test kills
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// SIGTERM (a graceful stop), then wait, bounded, for it to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
