//! A throwaway SMS network for the SMS tests: Kannel's bearerbox and smsbox with an SMSC of
//! type `fake`, and Kannel's `fakesmsc` as the phones, installed from Debian's `kannel` and
//! `kannel-extras` when missing, configured in a temp dir (never `/etc/kannel`), on free
//! loopback ports, stopped and removed on drop.
//!
//! - Inbound: a line `FROM TO text MESSAGE` written to the FIFO `ADUAN_TEST_KANNEL_FAKESMSC_IN`
//!   is an SMS from FROM; smsbox calls `http://ADUAN_TEST_KANNEL_MO_ADDR/hooks/kannel?secret=
//!   ADUAN_TEST_KANNEL_SECRET&from=%p&to=%P&text=%b&charset=%C&coding=%c&ts=%T&id=%I&smsc=%i`
//!   (nothing listens there until a test binds that address; smsbox retries a failed call
//!   5 times, 1 s apart, with the same `%I`).
//! - Outbound: `ADUAN_TEST_KANNEL_SENDSMS_URL` with `ADUAN_TEST_KANNEL_USER` /
//!   `ADUAN_TEST_KANNEL_PASSWORD`; fakesmsc writes every SMS it receives to
//!   `ADUAN_TEST_KANNEL_FAKESMSC_OUT` as `Got message N: <FROM TO text MSG>` (or
//!   `<FROM TO udh UDH data MSG>` for the parts of a long one, URL-encoded).
//!
//! Pitfalls kept from the recipe in ../shared/peers: `max-messages = 0` on the service (or
//! the webhook's answer goes back to the phone); fakesmsc reads its stdin FIFO opened
//! read-write (never EOF) through `stdbuf -i0` (or lines arriving together get stuck);
//! bearerbox takes one fake-SMSC client at a time.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sys::{apt_install, can_apt_install, free_ports};

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
pub const USER: &str = "aduan";
pub const PASSWORD: &str = "secret";
pub const SECRET: &str = "kannel-test-secret";

pub struct KannelPeer {
    dir: PathBuf,
    admin: u16,
    sendsms: u16,
    pub mo: SocketAddr,
    /// fakesmsc, smsbox, bearerbox: stopped in this order.
    children: Vec<(&'static str, Child)>,
}

fn installed() -> bool {
    [BEARERBOX, SMSBOX, FAKESMSC, "/usr/bin/stdbuf"].iter().all(|p| Path::new(p).exists())
}

/// Installs Kannel and its test tools from Debian's packages without starting the
/// distribution's Kannel service.
fn install() -> anyhow::Result<()> {
    if !can_apt_install() {
        bail!(
            "Kannel is missing. Install it, e.g. `sudo apt-get install kannel kannel-extras`, \
             and run `cargo xtask test` again."
        );
    }
    eprintln!("xtask: installing Kannel from Debian's packages");
    apt_install(&[], &["kannel", "kannel-extras"])?;
    Ok(())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(20).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn wait_port(port: u16, log: &Path) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr} after 30 s; {}:\n{}", log.display(), tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A GET on loopback, the whole answer as text.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

impl KannelPeer {
    pub fn start() -> anyhow::Result<KannelPeer> {
        if !installed() {
            install()?;
            if !installed() {
                bail!("Kannel was installed but bearerbox, smsbox or fakesmsc is not to be found");
            }
        }
        let dir = std::env::temp_dir().join(format!("aduan-xtask-kannel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let [admin, boxp, sendsms, fake, mo] = free_ports::<5>()?;
        let mut peer = KannelPeer {
            dir,
            admin,
            sendsms,
            mo: SocketAddr::from(([127, 0, 0, 1], mo)),
            children: Vec::new(),
        };
        // From here on, dropping `peer` stops whatever was started.
        let d = peer.dir.clone();
        let conf = d.join("kannel.conf");
        std::fs::write(&conf, config(&d, admin, boxp, sendsms, fake, peer.mo))?;

        peer.spawn("bearerbox", Command::new(BEARERBOX).arg("-v").arg("1").arg(&conf))?;
        wait_port(boxp, &d.join("bearerbox.stdout"))?;
        wait_port(fake, &d.join("bearerbox.stdout"))?;
        peer.spawn("smsbox", Command::new(SMSBOX).arg("-v").arg("1").arg(&conf))?;
        wait_port(sendsms, &d.join("smsbox.stdout"))?;

        let fifo = d.join("fakesmsc.in");
        let status = Command::new("mkfifo").arg(&fifo).status().context("cannot run mkfifo")?;
        if !status.success() {
            bail!("mkfifo {} failed", fifo.display());
        }
        // Read-write: the FIFO never reaches end of file when a test closes its end.
        let stdin = OpenOptions::new().read(true).write(true).open(&fifo)?;
        let out = File::create(d.join("fakesmsc.out"))?;
        let child = Command::new("/usr/bin/stdbuf")
            .args(["-i0", "-o0", "-e0", FAKESMSC, "-H", "127.0.0.1", "-r"])
            .arg(fake.to_string())
            .args(["-i", "0"])
            .stdin(stdin)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start fakesmsc")?;
        peer.children.insert(0, ("fakesmsc", child));
        // Ready once bearerbox reports the fake SMSC online.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status =
                http_get(admin, &format!("/status.txt?password={PASSWORD}")).unwrap_or_default();
            if status.lines().any(|l| l.contains("fake") && l.contains("online")) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the fake SMSC never came online; bearerbox status:\n{status}\nfakesmsc:\n{}",
                    tail(&d.join("fakesmsc.out"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(peer)
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) -> anyhow::Result<()> {
        let out = File::create(self.dir.join(format!("{name}.stdout")))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.insert(0, (name, child));
        Ok(())
    }

    /// The variables the tests read.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ADUAN_TEST_KANNEL_SENDSMS_URL",
                format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms),
            ),
            ("ADUAN_TEST_KANNEL_USER", USER.to_owned()),
            ("ADUAN_TEST_KANNEL_PASSWORD", PASSWORD.to_owned()),
            ("ADUAN_TEST_KANNEL_SECRET", SECRET.to_owned()),
            ("ADUAN_TEST_KANNEL_MO_ADDR", self.mo.to_string()),
            ("ADUAN_TEST_KANNEL_FAKESMSC_IN", self.dir.join("fakesmsc.in").display().to_string()),
            ("ADUAN_TEST_KANNEL_FAKESMSC_OUT", self.dir.join("fakesmsc.out").display().to_string()),
            (
                "ADUAN_TEST_KANNEL_STATUS_URL",
                format!("http://127.0.0.1:{}/status.txt?password={PASSWORD}", self.admin),
            ),
        ]
    }
}

fn config(d: &Path, admin: u16, boxp: u16, sendsms: u16, fake: u16, mo: SocketAddr) -> String {
    let d = d.display();
    format!(
        r#"# Rendered by cargo xtask (xtask/src/kannel.rs); never reads /etc/kannel.
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = {PASSWORD}
status-password = {PASSWORD}
admin-allow-ip = "127.0.0.1"
smsbox-port = {boxp}
smsbox-interface = 127.0.0.1
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = 0
access-log = "{d}/access.log"

# bearerbox listens here; fakesmsc connects and plays the phones.
group = smsc
smsc = fake
smsc-id = fake
port = {fake}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {boxp}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{d}/smsbox.log"
log-level = 0
access-log = "{d}/smsbox-access.log"
mo-recode = true
# A failed webhook call is repeated with the same %I (the tests rely on it).
http-request-retry = 5
http-queue-delay = 1

group = sms-service
keyword = default
catch-all = true
get-url = "http://{mo}/hooks/kannel?secret={SECRET}&from=%p&to=%P&text=%b&charset=%C&coding=%c&ts=%T&id=%I&smsc=%i"
max-messages = 0
omit-empty = true
concatenation = true

group = sendsms-user
username = {USER}
password = {PASSWORD}
user-allow-ip = "127.0.0.1"
concatenation = true
max-messages = 10
"#
    )
}

/// Whether `pid` runs and is not a zombie.
fn alive(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}

impl Drop for KannelPeer {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.children.iter_mut().any(|(_, c)| alive(c)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (name, child) in &mut self.children {
            if alive(child) {
                eprintln!("xtask: {name} did not stop on TERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::env::var_os("ADUAN_KEEP_KANNEL_PEER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
