//! The command line: `check-config`, environment overrides, `user add`.

use std::net::{SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use aduan_tests::{Binary, Config, Daemon, Site, free_port, run_to_completion};
use reqwest::StatusCode;

use crate::common::{client, get};

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_reports_every_problem_with_its_path() {
    let Some(bin) = Binary::locate() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n\n[channels.email]\nenabled = true\n")
        .expect("write the config");
    let out = run_to_completion(
        bin.command().args(["check-config", "--config"]).arg(&file).current_dir(dir.path()),
        "",
        Duration::from_secs(60),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "check-config of a broken file:\n{stdout}\n{stderr}");
    for path in [
        "server.listen",
        "channels.email.imap_host",
        "channels.email.imap_user",
        "channels.email.imap_password",
        "channels.email.smtp_url",
        "channels.email.from",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{path}: "))),
            "no `{path}: …` line in the output of check-config:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("nowhere"), "the bad value is not named:\n{stdout}");
    assert!(!stdout.contains("configuration OK"), "{stdout}");

    // A good file (the harness's own) passes, with the OPD registry read.
    let site = Site::new(&bin, Config::sqlite());
    let out = site.cli(&["check-config"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "check-config of a good file:\n{stdout}\n{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}\n{stderr}");
    assert!(stdout.contains("OPD registry"), "{stdout}\n{stderr}");

    // `serve` with a file that does not exist refuses to start, and says why.
    let missing = dir.path().join("missing.toml");
    let out = run_to_completion(
        bin.command().arg("serve").arg("--config").arg(&missing).current_dir(dir.path()),
        "",
        Duration::from_secs(30),
    );
    let (stdout, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "serve with a missing config file succeeded:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("--config") && stderr.contains("missing.toml"),
        "serve with a missing config file does not say which:\n{stderr}"
    );
}

#[tokio::test]
async fn env_overrides_config() {
    let Some(bin) = Binary::locate() else { return };
    let env_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let daemon =
        Daemon::start(&bin, Config::sqlite().env("ADUAN__SERVER__LISTEN", env_addr.to_string()))
            .await;
    let file_addr = daemon.site().file_listen();
    assert_ne!(file_addr, env_addr);
    assert_eq!(daemon.addr(), env_addr);
    let http = client();
    let r = get(&http, &daemon, "/healthz", None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok"));
    assert!(
        TcpStream::connect_timeout(&file_addr, Duration::from_secs(2)).is_err(),
        "something answers on the file's address {file_addr} as well"
    );
    // The rest of the file still applies: the database is the file's.
    assert!(
        daemon.site().dir().join("aduan.db").is_file(),
        "the database of the config file was not used"
    );
    let log = daemon.log();
    assert!(
        log.lines().any(|l| l.contains("Listening.") && l.contains(&env_addr.to_string())),
        "the daemon does not log that it listens on {env_addr}:\n{log}"
    );
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let Some(bin) = Binary::locate() else { return };
    let site = Site::new(&bin, Config::sqlite());
    let add = |email: &str, opd: &str, password: &str| {
        let out = site
            .cli_with_stdin(&["user", "add", email, "--role", "official", "--opd", opd], password);
        let (stdout, stderr) = texts(&out);
        (out.status, stdout, stderr)
    };

    let (status, stdout, stderr) = add("kepala.dpu@example.go.id", "DPU", "rahasia-sekali-123\n");
    assert!(status.success(), "user add failed ({status}):\n{stdout}\n{stderr}");
    assert!(stdout.contains("kepala.dpu@example.go.id") && stdout.contains("official"), "{stdout}");

    let (status, stdout, stderr) = add("kepala.dpu@example.go.id", "DPU", "rahasia-sekali-123\n");
    assert!(!status.success(), "adding the same user twice succeeded:\n{stdout}\n{stderr}");
    assert!(!stderr.trim().is_empty(), "a refusal without a message");

    let (status, stdout, stderr) = add("staf.dpu@example.go.id", "NOPE", "rahasia-sekali-123\n");
    assert!(!status.success(), "an official of an unknown OPD was added:\n{stdout}\n{stderr}");
    assert!(stderr.contains("NOPE"), "the refusal does not name the OPD: {stderr}");

    // The password really comes from stdin: a short one is refused...
    let (status, stdout, stderr) = add("staf.dpu@example.go.id", "DPU", "pendek\n");
    assert!(!status.success(), "a 6-character password was accepted:\n{stdout}\n{stderr}");
    assert!(stderr.contains("password"), "{stderr}");
    // ...and the same user with a good one is added: the refusals above were about them.
    let (status, stdout, stderr) = add("staf.dpu@example.go.id", "DPU", "rahasia-sekali-456\n");
    assert!(status.success(), "user add failed ({status}):\n{stdout}\n{stderr}");
}
