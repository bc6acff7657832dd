//! `deploy/` stays true to the binary: every configuration it ships (and the channel
//! examples commented in them) passes `check-config`; the commands the systemd unit, the
//! image and the migration Job run are real; the probe paths answer; SIGTERM stops the
//! daemon well within the unit's `TimeoutStopSec`.
//!
//! The files' absolute paths (`/etc/aduan`, `/var/lib/aduan`, `/usr/share/aduan`,
//! `/run/secrets`) are mapped into a temp dir laid out as the install steps lay them out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aduan_tests::{Binary, free_port, run_to_completion, workspace_root};

fn deploy(path: &str) -> PathBuf {
    workspace_root().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn texts(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temp dir standing in for `/`: the registry and holidays where the unit's install
/// steps put them (`/etc/aduan`) and where the image has them (`/usr/share/aduan`).
struct Root {
    dir: tempfile::TempDir,
    port: u16,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::Builder::new().prefix("aduan-deploy-").tempdir().expect("temp dir");
        for sub in ["etc/aduan/secrets", "usr/share/aduan", "var/lib/aduan", "run/secrets/aduan"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create the layout");
        }
        for file in ["opd.toml", "libur.toml"] {
            let from = workspace_root().join("config").join(file);
            for to in ["etc/aduan", "usr/share/aduan"] {
                std::fs::copy(&from, dir.path().join(to).join(file)).expect("copy the registry");
            }
        }
        Root { dir, port: free_port() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `text` with the deployment's absolute paths moved under this root and the listen
    /// address moved to a free loopback port.
    fn map(&self, text: &str) -> String {
        let root = self.path().display().to_string();
        let mut out = String::new();
        for line in text.lines() {
            let line = if line.trim_start().starts_with("listen = ") {
                format!("listen = \"127.0.0.1:{}\"", self.port)
            } else {
                ["/etc/aduan", "/var/lib/aduan", "/usr/share/aduan", "/run/secrets"]
                    .iter()
                    .fold(line.to_owned(), |l, p| l.replace(p, &format!("{root}{p}")))
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Writes a deployment's `aduan.toml`, mapped, as `<root>/etc/aduan/aduan.toml`.
    fn install_config(&self, text: &str) -> PathBuf {
        let path = self.path().join("etc/aduan/aduan.toml");
        std::fs::write(&path, self.map(text)).expect("write the config");
        path
    }

    fn check_config(&self, bin: &Binary, config: &Path) -> Output {
        run_to_completion(
            bin.command().arg("--config").arg(config).arg("check-config").current_dir(self.path()),
            "",
            Duration::from_secs(60),
        )
    }
}

/// The commented channel examples of a shipped config, uncommented (`# [channels.x]` and
/// the `# key = value` lines after it), with a stand-in file for every `*_file` they name.
fn with_channel_examples(root: &Root, text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut in_examples = false;
    let mut tables = 0;
    for line in text.lines() {
        let example = line.strip_prefix("# ").filter(|rest| {
            rest.starts_with("[channels.")
                || (in_examples && rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
        });
        match example {
            Some(rest) => {
                if rest.starts_with("[channels.") {
                    in_examples = true;
                    tables += 1;
                }
                if let Some((key, value)) = rest.split_once(" = ")
                    && key.ends_with("_file")
                {
                    let file = root.map(value.trim_matches('"'));
                    // Valid values: a URL for smtp_url; the rest fits every secret's rule
                    // (Telegram's secret_token: A-Z a-z 0-9 _ -).
                    let value = match key {
                        "smtp_url_file" => "smtps://aduan:secret@smtp.example.go.id\n",
                        _ => "stand-in_secret-123\n",
                    };
                    std::fs::write(file.trim(), value)
                        .unwrap_or_else(|e| panic!("write the stand-in for {key}: {e}"));
                }
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    (out, tables)
}

#[test]
fn every_shipped_configuration_passes_check_config() {
    let Some(bin) = Binary::locate() else { return };
    for name in
        ["systemd/aduan.toml", "container/aduan.toml", "compose/aduan.toml", "k8s/aduan.toml"]
    {
        let root = Root::new();
        let text = read(&deploy(name));
        let config = root.install_config(&text);
        let out = root.check_config(&bin, &config);
        let all = texts(&out);
        assert_eq!(out.status.code(), Some(0), "check-config of deploy/{name}:\n{all}");
        for expected in ["OPD registry", "holiday calendar", "configuration OK"] {
            assert!(all.contains(expected), "deploy/{name}: no {expected:?} in\n{all}");
        }
        assert!(!all.contains("warning"), "deploy/{name} draws a warning:\n{all}");

        // The channel examples commented in the file name real keys with valid values.
        let (enabled, tables) = with_channel_examples(&root, &text);
        // The image's own file has none: channels are configured by mounting another.
        if name.starts_with("container/") {
            assert_eq!(tables, 0);
            continue;
        }
        assert!(tables >= 1, "deploy/{name} has no commented [channels.*] example");
        let config = root.install_config(&enabled);
        let out = root.check_config(&bin, &config);
        let all = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "deploy/{name} with its channel examples uncommented:\n{enabled}\n{all}"
        );
    }
}

/// The arguments of the first `Key=` line of a systemd unit.
fn unit_command(unit: &str, key: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="));
    line.split_whitespace().map(str::to_owned).collect()
}

/// A JSON-array (exec form) instruction of the Containerfile.
fn exec_form(containerfile: &str, instruction: &str) -> Vec<String> {
    let line = containerfile
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("the Containerfile has no {instruction}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{instruction} {line}: {e}"))
}

/// Runs a deployment's command line: its program (`/usr/local/bin/aduan`, or `aduan` on
/// the PATH) is the built binary, its paths are mapped under `root`.
fn deployed(bin: &Binary, root: &Root, argv: &[String]) -> Command {
    let (program, args) = argv.split_first().expect("an empty command");
    assert!(
        program == "/usr/local/bin/aduan" || program == "aduan",
        "the deployment runs {program}, not the aduan binary"
    );
    let mut cmd = bin.command();
    cmd.args(args.iter().map(|a| root.map(a).trim_end().to_owned())).current_dir(root.path());
    cmd
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let resp = client.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.unwrap_or_default()))
}

#[tokio::test]
async fn the_unit_image_and_job_run_real_commands_and_the_probes_answer() {
    let Some(bin) = Binary::locate() else { return };
    let root = Root::new();
    root.install_config(&read(&deploy("systemd/aduan.toml")));

    // The systemd unit: ExecStartPre (check-config) passes; ExecStart serves.
    let unit = read(&deploy("systemd/aduan.service"));
    let pre = unit_command(&unit, "ExecStartPre");
    let out = run_to_completion(&mut deployed(&bin, &root, &pre), "", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "ExecStartPre {pre:?}:\n{}", texts(&out));

    let log_path = root.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("create the log");
    let mut serve = deployed(&bin, &root, &unit_command(&unit, "ExecStart"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .spawn()
        .expect("start ExecStart");
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("HTTP client");
    let base = format!("http://127.0.0.1:{}", root.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = get(&client, &format!("{base}/readyz")).await {
            break;
        }
        if let Some(status) = serve.try_wait().expect("try_wait") {
            panic!("ExecStart exited with {status}:\n{}", read(&log_path));
        }
        assert!(Instant::now() < deadline, "ExecStart never got ready:\n{}", read(&log_path));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The state is where the unit's StateDirectory is.
    assert!(root.path().join("var/lib/aduan/aduan.db").is_file(), "no database in StateDirectory");
    assert!(root.path().join("var/lib/aduan/attachments").is_dir(), "no attachments dir");

    // Every probe path of the Deployment and the image's HEALTHCHECK answer 200.
    let deployment = read(&deploy("k8s/deployment.yaml"));
    let probes: Vec<&str> =
        deployment.lines().filter_map(|l| l.trim().strip_prefix("path: ")).collect();
    assert!(probes.contains(&"/healthz") && probes.contains(&"/readyz"), "{probes:?}");
    let containerfile = read(&deploy("Containerfile"));
    assert!(containerfile.contains("GET /readyz"), "the HEALTHCHECK does not ask /readyz");
    for path in probes {
        assert_eq!(
            get(&client, &format!("{base}{path}")).await.map(|(s, _)| s),
            Some(200),
            "probe {path}"
        );
    }

    // SIGTERM (the unit's KillSignal) stops it with 0 well within TimeoutStopSec.
    assert!(unit.contains("KillSignal=SIGTERM"), "the unit does not stop with SIGTERM");
    let stop_secs: u64 = unit_command(&unit, "TimeoutStopSec")[0].parse().expect("seconds");
    let status =
        Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(stop_secs);
    let exit = loop {
        if let Some(status) = serve.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = serve.kill();
            panic!("still running {stop_secs} s after SIGTERM:\n{}", read(&log_path));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0), "exit after SIGTERM:\n{}", read(&log_path));

    // The image: ENTRYPOINT + CMD is `aduan --config /etc/aduan/aduan.toml serve`, and the
    // image's own config (copied to /etc/aduan/aduan.toml) passes check-config there.
    let image_root = Root::new();
    image_root.install_config(&read(&deploy("container/aduan.toml")));
    let entrypoint = exec_form(&containerfile, "ENTRYPOINT");
    assert_eq!(exec_form(&containerfile, "CMD"), ["serve"]);
    let mut check = entrypoint.clone();
    check.push("check-config".into());
    let out =
        run_to_completion(&mut deployed(&bin, &image_root, &check), "", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{check:?} in the image:\n{}", texts(&out));

    // The migration Job's args after the ENTRYPOINT migrate (here on the image's SQLite).
    let job = read(&deploy("k8s/migrate-job.yaml"));
    let args = job.lines().find_map(|l| l.trim().strip_prefix("args: ")).expect("the Job has args");
    let args: Vec<String> = serde_json::from_str(args).expect("args as a JSON list");
    let mut migrate = entrypoint;
    migrate.extend(args);
    let out =
        run_to_completion(&mut deployed(&bin, &image_root, &migrate), "", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{migrate:?}:\n{}", texts(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"), "{}", texts(&out));
}
