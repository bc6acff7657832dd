//! A small harness for end-to-end tests against a real `aduan` process.
//!
//! * [`Binary::locate`] finds the built daemon (`ADUAN_BIN`, else
//!   `<workspace>/target/debug/aduan`). Under `ADUAN_TEST_FULL` a missing binary is a
//!   failure; otherwise the test prints a skip notice and returns.
//! * [`Site`] is a temp directory with a config file in it, for the administrative commands.
//! * [`Daemon`] is a site with `aduan serve` running on it: started, killed with SIGKILL,
//!   terminated with SIGTERM and restarted on the same config and database.
//! * [`PgDatabase`] is a fresh PostgreSQL database on the server of `ADUAN_TEST_PG_URL`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub mod faults;

/// How long a started daemon has to answer `GET /readyz` with 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this is the full suite, where every peer must be present.
pub fn full_suite() -> bool {
    std::env::var_os("ADUAN_TEST_FULL").is_some_and(|v| !v.is_empty())
}

/// The workspace root: the parent of this package's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The OPD registry shipped in the repository.
pub fn opd_file() -> PathBuf {
    workspace_root().join("config").join("opd.toml")
}

/// A port nobody listens on right now (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A TOML string literal holding `s`.
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The built `aduan` executable.
#[derive(Debug, Clone)]
pub struct Binary {
    path: PathBuf,
}

impl Binary {
    /// `ADUAN_BIN`, else `<workspace>/target/debug/aduan`. `None` (after a skip notice on
    /// stderr) when there is none and this is not the full suite; panics under
    /// `ADUAN_TEST_FULL`, and when `ADUAN_BIN` names something that is not a file.
    pub fn locate() -> Option<Binary> {
        if let Some(p) = std::env::var_os("ADUAN_BIN").filter(|v| !v.is_empty()) {
            let path = PathBuf::from(p);
            assert!(
                path.is_file(),
                "ADUAN_BIN={} is not a file; build the daemon with `cargo build -p aduan`",
                path.display()
            );
            return Some(Binary { path });
        }
        let path = workspace_root()
            .join("target")
            .join("debug")
            .join(format!("aduan{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            return Some(Binary { path });
        }
        assert!(
            !full_suite(),
            "ADUAN_TEST_FULL is set but there is no aduan binary: ADUAN_BIN is unset and {} \
             does not exist. Build it with `cargo build -p aduan` and set ADUAN_BIN.",
            path.display()
        );
        eprintln!(
            "SKIPPED: no aduan binary (ADUAN_BIN unset, {} missing); run `cargo build -p aduan` \
             to run the end-to-end tests",
            path.display()
        );
        None
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command for the binary with a clean configuration environment: no `ADUAN__*`
    /// variables leak in from the environment the tests run in, and no `RUST_LOG` (the
    /// config's `[log] level` decides).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ADUAN__") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("RUST_LOG");
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// What a [`Site`] (and its daemon) is configured with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `None`: SQLite at `<site>/aduan.db`.
    pub database_url: Option<String>,
    /// `[server] shutdown_grace_secs`; `None` keeps the daemon's default.
    pub shutdown_grace_secs: Option<u64>,
    /// Appended to the generated file verbatim (must not repeat its tables).
    pub extra_toml: String,
    /// Environment variables for every process run on the site.
    pub env: Vec<(String, String)>,
}

impl Config {
    pub fn sqlite() -> Config {
        Config::default()
    }

    pub fn postgres(url: impl Into<String>) -> Config {
        Config { database_url: Some(url.into()), ..Config::default() }
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Config {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn shutdown_grace_secs(mut self, secs: u64) -> Config {
        self.shutdown_grace_secs = Some(secs);
        self
    }
}

/// A temp directory with `aduan.toml` (and, for SQLite, `aduan.db`) in it.
#[derive(Debug)]
pub struct Site {
    bin: Binary,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    config: Config,
    listen: SocketAddr,
}

impl Site {
    pub fn new(bin: &Binary, config: Config) -> Site {
        let dir = tempfile::Builder::new().prefix("aduan-e2e-").tempdir().expect("temp dir");
        let config_path = dir.path().join("aduan.toml");
        let mut site = Site {
            bin: bin.clone(),
            dir,
            config_path,
            config,
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
        };
        site.write_config();
        site
    }

    fn write_config(&mut self) {
        let dir = self.dir.path();
        let db = match &self.config.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.join("aduan.db").display()),
        };
        let mut text = format!(
            "[server]\nlisten = {}\npublic_url = {}\n",
            toml_str(&self.listen.to_string()),
            toml_str(&format!("http://{}", self.listen)),
        );
        if let Some(grace) = self.config.shutdown_grace_secs {
            text.push_str(&format!("shutdown_grace_secs = {grace}\n"));
        }
        text.push_str(&format!(
            "\n[database]\nurl = {}\n\n[storage]\ndir = {}\n\n[routing]\nopd_file = {}\n\n\
             [log]\nlevel = \"info\"\n",
            toml_str(&db),
            toml_str(&dir.join("attachments").display().to_string()),
            toml_str(&opd_file().display().to_string()),
        ));
        if !self.config.extra_toml.is_empty() {
            text.push('\n');
            text.push_str(&self.config.extra_toml);
            text.push('\n');
        }
        std::fs::write(&self.config_path, text).expect("write the config file");
    }

    /// Moves the listener to another free port (after a lost race for the old one).
    fn move_port(&mut self) {
        self.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        self.write_config();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The address in the config file.
    pub fn file_listen(&self) -> SocketAddr {
        self.listen
    }

    /// The address the daemon listens on: `ADUAN__SERVER__LISTEN` when the site sets it,
    /// else the file's.
    pub fn effective_listen(&self) -> SocketAddr {
        match self.config.env.iter().rev().find(|(k, _)| k == "ADUAN__SERVER__LISTEN") {
            Some((_, v)) => {
                v.parse().unwrap_or_else(|_| panic!("ADUAN__SERVER__LISTEN={v} is not an address"))
            }
            None => self.listen,
        }
    }

    /// `aduan ARGS --config <file>`, run in the site's directory with its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.bin.command();
        cmd.args(args).arg("--config").arg(&self.config_path).current_dir(self.dir.path());
        for (k, v) in &self.config.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `aduan ARGS --config <file>` to completion (60 s at most).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, "")
    }

    /// Like [`Site::cli`], with `stdin` written to the command's standard input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = self.command(args);
        run_to_completion(&mut cmd, stdin, Duration::from_secs(60))
    }
}

/// Runs a command with `stdin` as its input; panics if it runs longer than `timeout`.
pub fn run_to_completion(cmd: &mut Command, stdin: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        // A command that exits without reading its input is not an error here.
        let _ = input.write_all(stdin.as_bytes());
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{cmd:?} still ran after {timeout:?}; killed it");
        }
    }
}

/// `aduan serve` running on a [`Site`]. Dropping it kills the process.
pub struct Daemon {
    site: Site,
    child: Option<Child>,
    log_path: PathBuf,
    starts: u32,
    http: reqwest::Client,
}

impl Daemon {
    /// Writes the config into a new temp dir, starts `aduan serve` and waits until
    /// `GET /readyz` answers 200 (panics with the daemon's log after [`READY_TIMEOUT`]).
    pub async fn start(bin: &Binary, config: Config) -> Daemon {
        let port_from_env = config.env.iter().any(|(k, _)| k == "ADUAN__SERVER__LISTEN");
        let site = Site::new(bin, config);
        let log_path = site.dir().join("aduan.log");
        let mut daemon = Daemon {
            site,
            child: None,
            log_path,
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .pool_max_idle_per_host(0)
                .build()
                .expect("HTTP client"),
        };
        // Another process may take the free port between choosing and binding it.
        for attempt in 1.. {
            daemon.spawn();
            match daemon.wait_ready().await {
                Ok(()) => break,
                Err(why) => {
                    let log = daemon.log();
                    let lost_port = log.contains("cannot listen on");
                    if lost_port && !port_from_env && attempt < 3 {
                        daemon.site.move_port();
                        continue;
                    }
                    panic!("{why}; its log ({}):\n{log}", daemon.log_path.display());
                }
            }
        }
        daemon
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the daemon log");
        writeln!(
            log,
            "===== harness: start #{} of aduan serve on {} =====",
            self.starts,
            self.site.effective_listen()
        )
        .expect("write the daemon log");
        let err: File = log.try_clone().expect("clone the log file handle");
        let mut cmd = self.site.command(&["serve"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.site.bin.path.display()));
        self.child = Some(child);
    }

    /// Polls `/readyz`; an error names what went wrong (the process exited, or time ran out).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("/readyz");
        loop {
            let child = self.child.as_mut().expect("a started daemon");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!("aduan serve exited with {status} before it was ready"));
            }
            if let Ok(resp) = self.http.get(&url).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(format!(
                    "aduan serve did not answer GET {url} with 200 within {READY_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The address the daemon listens on.
    pub fn addr(&self) -> SocketAddr {
        self.site.effective_listen()
    }

    /// `http://<addr>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Everything the daemon printed, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Creates an API key with `aduan apikey create NAME --scope SCOPE` and returns its
    /// token (the last line printed).
    pub fn apikey(&self, name: &str, scope: &str) -> String {
        apikey(&self.site, name, scope)
    }

    /// SIGKILL: the process gets no chance to clean up. Waits until it is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns at once; see [`Daemon::wait_exit`].
    pub fn send_sigterm(&self) {
        let pid = self.pid().expect("the daemon is not running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// The exit status if the process has exited (without waiting); `None` while it runs.
    /// Panics if it was stopped already.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("the daemon is not running");
        let status = child.try_wait().expect("try_wait")?;
        self.child = None;
        Some(status)
    }

    /// Waits until the process exits; `None` if it still runs after `timeout` (it is then
    /// killed with SIGKILL).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("the daemon is not running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                self.kill9();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit status (panics with the log if the
    /// process is still running then).
    pub async fn terminate_within(&mut self, timeout: Duration) -> ExitStatus {
        self.send_sigterm();
        match self.wait_exit(timeout).await {
            Some(status) => status,
            None => panic!(
                "aduan serve still ran {timeout:?} after SIGTERM (killed it); its log:\n{}",
                self.log()
            ),
        }
    }

    /// SIGTERM, then waits for the grace period of the config (30 s by default) and 5 s.
    pub async fn terminate(&mut self) -> ExitStatus {
        let grace = self.site.config.shutdown_grace_secs.unwrap_or(30);
        self.terminate_within(Duration::from_secs(grace + 5)).await
    }

    /// Starts the daemon again on the same config, port and database (a running one is
    /// killed with SIGKILL first) and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        if let Err(why) = self.wait_ready().await {
            panic!("{why} (restart); its log:\n{}", self.log());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- log of aduan serve ({}) -----\n{}\n----- end of log -----",
                self.log_path.display(),
                tail(&self.log(), 200)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `aduan apikey create NAME --scope SCOPE` on a site; the token is the last line printed.
pub fn apikey(site: &Site, name: &str, scope: &str) -> String {
    let out = site.cli(&["apikey", "create", name, "--scope", scope]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aduan apikey create {name} --scope {scope} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let token =
        stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned();
    assert!(
        token.starts_with("adu_"),
        "the last line of `aduan apikey create` is not a token: {stdout}"
    );
    token
}

/// A fresh, empty database on the PostgreSQL server of `ADUAN_TEST_PG_URL`, dropped again
/// when this is dropped.
pub struct PgDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// `None` (after a skip notice) when `ADUAN_TEST_PG_URL` is unset outside the full suite;
    /// panics when it is unset under `ADUAN_TEST_FULL`, or the server can't be used.
    pub async fn create() -> Option<PgDatabase> {
        let admin_url = match std::env::var("ADUAN_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    !full_suite(),
                    "ADUAN_TEST_FULL is set but ADUAN_TEST_PG_URL is not: the PostgreSQL \
                     end-to-end tests can't run. Set it to an admin URL such as \
                     postgres://aduan@127.0.0.1:55432/postgres."
                );
                eprintln!("SKIPPED: ADUAN_TEST_PG_URL unset; PostgreSQL variant not run");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("aduan_e2e_{}_{nanos}", std::process::id());
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to ADUAN_TEST_PG_URL: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(PgDatabase { url, admin_url, name })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort, on a runtime of its own: Drop can't await.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()?;
                let _ = admin.close().await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop the test database {}", self.name);
        }
    }
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let head = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_rewritten() {
        assert_eq!(
            with_database("postgres://aduan@127.0.0.1:55432/postgres", "x"),
            "postgres://aduan@127.0.0.1:55432/x"
        );
        assert_eq!(
            with_database("postgres://a:b@h/postgres?sslmode=disable", "x"),
            "postgres://a:b@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn toml_strings_are_escaped() {
        for s in [r#"a"b\c"#, "line\nbreak", "/tmp/x y/aduan.db", "it's"] {
            let doc: toml::Table = format!("v = {}", toml_str(s)).parse().unwrap();
            assert_eq!(doc["v"].as_str(), Some(s));
        }
    }
}
