//! A throwaway PostgreSQL cluster for the test suite: installed from Debian's packages when
//! missing, initialised in a temp dir, listening on a free loopback port, removed on drop.
//! It never touches a server that is already running on the machine.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sys::{apt_install, can_apt_install, free_port, is_root};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    pub url: String,
}

/// The newest `/usr/lib/postgresql/<v>/bin` with `initdb`, or where `pg_config` points.
fn find_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").is_file().then_some(bin)
}

/// Installs Debian's `postgresql` package (root only) without starting its service.
fn install() -> anyhow::Result<()> {
    if !can_apt_install() {
        bail!(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing. Install them, e.g. \
             `sudo apt-get install postgresql`, and run `cargo xtask test` again."
        );
    }
    eprintln!("xtask: installing PostgreSQL from Debian's packages");
    apt_install(&[], &["postgresql"])?;
    Ok(())
}

impl Cluster {
    pub fn start() -> anyhow::Result<Cluster> {
        Cluster::start_with("-c fsync=off")
    }

    /// A cluster as in production (`fsync=on`), with `pg_stat_statements` loaded at its
    /// default `track = top` (statements run by triggers and functions count in the
    /// statement that ran them), for the intake benchmark. `track = all` shows those too but
    /// costs the new-sender intake about 5 % (4,500-4,700 against 4,800-5,000 msg/s, 5 Dec
    /// 2026): it times each of the ~10 statements the triggers and foreign-key checks run
    /// per message.
    pub fn start_durable() -> anyhow::Result<Cluster> {
        Cluster::start_with("-c fsync=on -c shared_preload_libraries=pg_stat_statements")
    }

    fn start_with(settings: &str) -> anyhow::Result<Cluster> {
        let bin = match find_bindir() {
            Some(b) => b,
            None => {
                install()?;
                find_bindir().context("PostgreSQL was installed but initdb is not to be found")?
            }
        };
        // initdb refuses to run as root: run the server as the `postgres` system user.
        let run_as = if is_root() {
            let has_user = Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?
                .success();
            if !has_user {
                Command::new("useradd")
                    .args(["--system", "--no-create-home", "postgres"])
                    .status()?;
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("aduan-xtask-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if let Some(user) = &run_as {
            Command::new("chown").args([user.as_str(), &dir.to_string_lossy()]).status()?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            url: format!("postgres://aduan@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            run_as,
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "aduan",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        )?;
        // The test cluster is disposable: fsync off keeps the suite fast.
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 {settings} -c max_connections=200",
            cluster.dir.display()
        );
        let log = cluster.dir.join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("PostgreSQL did not start; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("cannot run {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
