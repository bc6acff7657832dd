//! The browser peer of the test suite: Debian's Chromium and chromedriver (installed when
//! missing and root), chromedriver on a free loopback port with its log in a temp dir. The
//! tests open headless sessions over W3C WebDriver (`ADUAN_TEST_WEBDRIVER`). Dropping it
//! stops chromedriver and any browser it left behind, by PID.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sys::{apt_install, can_apt_install};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn install() -> anyhow::Result<()> {
    if !can_apt_install() {
        bail!(
            "Chromium and chromedriver are missing. Install them, e.g. `sudo apt-get install \
             chromium chromium-driver`, and run `cargo xtask test` again."
        );
    }
    eprintln!("xtask: installing Chromium and chromedriver from Debian's packages");
    apt_install(&[], &["chromium", "chromium-driver"])?;
    Ok(())
}

/// `GET /status` answered with `"ready":true` (chromedriver wants HTTP/1.1 and a Host
/// with the port; it may not close the connection, so read until the answer is seen).
fn ready(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).replace(' ', "");
        if text.contains("\"ready\":true") {
            return true;
        }
    }
    false
}

impl Browser {
    pub fn start() -> anyhow::Result<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            install()?;
        }
        let dir = tempfile::Builder::new().prefix("aduan-browser-").tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(dir.path().join("chromedriver.out"))?;
        // Without --allowed-ips chromedriver accepts local connections only.
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.path().join("chromedriver.log").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start chromedriver")?;
        let mut browser = Browser { child, addr, _dir: dir };
        let t0 = Instant::now();
        while !ready(addr) {
            if t0.elapsed() > Duration::from_secs(30) || browser.child.try_wait()?.is_some() {
                let out = std::fs::read_to_string(browser._dir.path().join("chromedriver.out"))
                    .unwrap_or_default();
                bail!("chromedriver did not get ready on {addr}:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(browser)
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ADUAN_TEST_WEBDRIVER", format!("http://{}", self.addr)),
            ("ADUAN_TEST_CHROMIUM", CHROMIUM.to_owned()),
        ]
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver does not stop the browsers of sessions still open when it is
        // terminated: stop its children first, by PID.
        let pid = self.child.id().to_string();
        if let Ok(out) = Command::new("pgrep").args(["-P", &pid]).output() {
            for kid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-TERM", kid]).status();
            }
        }
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
