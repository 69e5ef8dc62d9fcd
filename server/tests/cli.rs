//! The `monti-server` binary's own flags.

mod common;

use std::process::Command;

use common::{TestDb, TestServer, test_config};

fn monti_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_monti-server"));
    command
        .env_remove("MONTI_CONFIG")
        .env("RUST_BACKTRACE", "0");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_passes_against_a_ready_server_and_fails_without_one() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let listen = server.addr.to_string();
    let ready = monti_server()
        .args(["--listen", &listen, "--healthcheck"])
        .status()
        .expect("runs");
    assert!(ready.success());
    server.stop().await.expect("stops");
    let gone = monti_server()
        .args(["--listen", &listen, "--healthcheck"])
        .output()
        .expect("runs");
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot connect"));
    db.drop_database().await;
}

#[test]
fn print_config_shows_environment_overrides_and_help_names_them() {
    let output = monti_server()
        .args(["--print-config"])
        .env("MONTI_SIMULATOR_AGENTS", "123")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("agents = 123"), "{text}");

    // Secrets are masked, the rest of each URL kept.
    let output = monti_server()
        .args(["--print-config"])
        .env(
            "MONTI_DATABASE_URL",
            "postgres://monti:db-secret@db.internal/monti",
        )
        .env(
            "MONTI_REDIS_URL",
            "redis://:cache-secret@cache.internal:6379",
        )
        .env(
            "MONTI_AMAZON_CONNECT_ACCESS_KEY",
            "firehose-secret-0123456789",
        )
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(
        text.contains("postgres://monti:***@db.internal/monti"),
        "{text}"
    );
    assert!(text.contains("redis://:***@cache.internal:6379"), "{text}");
    assert!(text.contains("access_key = \"***\""), "{text}");
    let help = monti_server().arg("--help").output().expect("runs");
    assert!(String::from_utf8_lossy(&help.stdout).contains("MONTI_DATABASE_URL"));
}

#[test]
fn a_bad_setting_stops_the_server_with_a_reason() {
    let output = monti_server()
        .args(["--tick-ms", "0", "--print-config"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("tick_ms"));
}

#[test]
fn bindings_given_as_a_flag_reach_the_configuration() {
    let output = monti_server()
        .args([
            "--print-config",
            "--auth-bindings",
            r#"[{"group":"monti-sup-berlin","role":"supervisor","sites":["Berlin"]}]"#,
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("group = \"monti-sup-berlin\""), "{text}");
    assert!(text.contains("role = \"supervisor\""), "{text}");
    let bad = monti_server()
        .args(["--print-config", "--auth-bindings", "[{\"group\":1}]"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid bindings JSON"));
}
