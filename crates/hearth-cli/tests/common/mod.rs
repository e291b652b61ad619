//! What the CLI test files share.

use std::process::{Command, Output, Stdio};

/// Runs the `hearth` binary under test with `args` and no stdin.
pub fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running hearth")
}
