//! Running a program with no way out to the network, to prove it opens no
//! outbound connection: a fresh network namespace (`unshare -n`) whose only
//! interface is loopback (brought up, so a server can still listen on
//! 127.0.0.1), and, where `strace` is installed, a record of every
//! `socket`/`connect` call so a test can also assert that no IPv4/IPv6
//! socket was even opened.
//!
//! Use [`offline_command`] to get a [`Command`] to run or spawn (a
//! `hearth run` or a `hearth serve`), then [`inet_calls`] on its trace.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether this process may create network namespaces (root, or user
/// namespaces allowed).
pub fn available() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A command that runs `program args...` in a new network namespace with
/// only `lo` (up). With `strace` present, its `socket`/`connect` calls are
/// written to the returned trace path. `None` (after saying so) when
/// namespaces are unavailable outside CI; under `CI=true` that is a failure.
pub fn offline_command(
    program: &Path,
    args: &[&str],
    trace_dir: &Path,
) -> Option<(Command, Option<PathBuf>)> {
    if !available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`unshare -n` is not permitted here; the offline tests need it under CI");
        }
        crate::skip("`unshare -n` is not permitted here");
        return None;
    }
    let trace = has_strace().then(|| trace_dir.join("net.trace"));
    if trace.is_none() {
        eprintln!("note: strace not installed; only the network namespace is checked");
    }
    let mut c = Command::new("unshare");
    c.args([
        "-n",
        "--",
        "sh",
        "-c",
        "ip link set lo up 2>/dev/null; exec \"$@\"",
        "sh",
    ]);
    if let Some(t) = &trace {
        c.args(["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o"]);
        c.arg(t);
    }
    c.arg(program).args(args);
    Some((c, trace))
}

/// The lines of a trace that open an IPv4/IPv6 socket or connect one
/// (an empty list means the program never touched the network).
pub fn inet_calls(trace: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("AF_INET") || l.contains("AF_INET6"))
        .map(str::to_string)
        .collect()
}

/// The interfaces visible inside a fresh namespace made by
/// [`offline_command`] (for a test to show there is only `lo`).
pub fn interfaces_inside(trace_dir: &Path) -> Option<String> {
    let (mut c, _) = offline_command(Path::new("ip"), &["-o", "link"], trace_dir)?;
    let o = c.output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}
