//! Starting the real `lemonade` binary from a test: `lemonade serve` on a loopback port over a
//! data folder, configured only by its flags (no `LEMONADE_*` setting leaks in from the
//! environment that runs the tests).

use std::path::Path;
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_lemonade");

/// A `lemonade serve` command for `127.0.0.1:port` over `data`, quiet, with no standard input
/// or output; the caller decides where its log goes and spawns it.
pub fn serve_command(data: &Path, port: u16) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("LEMONADE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEMONADE_") && name != "LEMONADE_LOG" {
            command.env_remove(name);
        }
    }
    command
}
