//! What the desktop's tests that run a real server share.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

/// The `monti-server` binary next to this test's own directory (cargo and nextest build it for
/// the server's tests); built here when it is missing.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("monti-server");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Process::new(cargo)
            .args(["build", "-p", "monti-server", "--bin", "monti-server"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "monti-server builds");
    }
    binary
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
