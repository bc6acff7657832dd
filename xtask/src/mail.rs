//! A throwaway mail system for the email tests: Postfix (SMTP) delivering over LMTP into
//! Dovecot (IMAP, IMAPS), installed from Debian's packages when missing, configured in a
//! temp dir, listening on free loopback ports, stopped and removed on drop. It never reads
//! or touches `/etc/postfix` or `/etc/dovecot`, nor a mail server already running.
//!
//! Mailboxes: `intake`, `warga`, `kepala.dpu`, `kepala.dlh` and `outbox` at `aduan.test`,
//! password `secret`. Mail for any other domain lands in `outbox` (nothing leaves the
//! machine). Plus-addressing is on (`recipient_delimiter = +` in Postfix and Dovecot):
//! `warga+t1@aduan.test` is delivered into the folder `t1` of `warga` (created on delivery),
//! so concurrent tests each get their own folders; a second plus-part
//! (`intake+t1+<reply token>@`, how the daemon's mails to officials are answered) is dropped
//! from the envelope by a virtual alias, so that mail too lands in `t1`.
//!
//! The tests find it through `ADUAN_TEST_SMTP`, `ADUAN_TEST_IMAP` (plain, STARTTLS offered),
//! `ADUAN_TEST_IMAPS` (implicit TLS), `ADUAN_TEST_MAIL_CA` (the CA that signed the server
//! certificate), `ADUAN_TEST_MAIL_DOMAIN` and `ADUAN_TEST_MAIL_PASSWORD`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sys::{apt_install, can_apt_install, free_ports};

pub const DOMAIN: &str = "aduan.test";
pub const PASSWORD: &str = "secret";
pub const USERS: [&str; 5] = ["intake", "warga", "kepala.dpu", "kepala.dlh", "outbox"];
/// Where mail for other domains goes.
const CATCHALL: &str = "outbox";

pub struct MailPeer {
    dir: PathBuf,
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    pub ca: PathBuf,
}

fn installed() -> bool {
    ["/usr/sbin/dovecot", "/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap", "/usr/sbin/postfix"]
        .iter()
        .all(|p| Path::new(p).exists())
        && Path::new("/usr/bin/openssl").exists()
}

/// Installs Dovecot (IMAP, LMTP) and Postfix from Debian's packages without starting or
/// configuring their system services.
fn install() -> anyhow::Result<()> {
    if !can_apt_install() {
        bail!(
            "Dovecot and Postfix are missing. Install them, e.g. `sudo apt-get install \
             dovecot-imapd dovecot-lmtpd postfix openssl`, and run `cargo xtask test` again."
        );
    }
    eprintln!("xtask: installing Dovecot and Postfix from Debian's packages");
    // "No configuration": no /etc/postfix/main.cf, nothing started.
    let mut preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run debconf-set-selections")?;
    if let Some(stdin) = preseed.stdin.as_mut() {
        use std::io::Write;
        stdin.write_all(b"postfix postfix/main_mailer_type select No configuration\n")?;
    }
    preseed.wait()?;
    // Only what is missing: naming an installed package would upgrade it.
    let missing: Vec<&str> = ["dovecot-imapd", "dovecot-lmtpd", "postfix", "openssl"]
        .into_iter()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    let keep_config =
        ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"];
    apt_install(&keep_config, &missing)?;
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn id_of(flag: &str, name: &str) -> anyhow::Result<u32> {
    let out = Command::new("id").args([flag, name]).output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("no system user/group {name}"))
}

/// Waits until `addr` sends a first line starting with `greeting`.
fn wait_banner(addr: SocketAddr, greeting: &str, log: &Path) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(greeting) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            bail!(
                "nothing answered {greeting:?} on {addr} within 30 s; {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA and a server certificate for `localhost` / `127.0.0.1` signed by it (a
/// self-signed server certificate would be a CA used as an end entity, which rustls
/// refuses).
fn make_certificates(tls: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(tls)?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(Command::new("openssl")
        .current_dir(tls)
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "3650", "-subj", "/CN=aduan test CA", "-keyout", "ca.key", "-out"])
        .arg("ca.pem"))?;
    run(Command::new("openssl").current_dir(tls).args(["req"]).args(ec).args([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]))?;
    std::fs::write(
        tls.join("server.ext"),
        "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )?;
    run(Command::new("openssl").current_dir(tls).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]))?;
    Ok(())
}

impl MailPeer {
    pub fn start() -> anyhow::Result<MailPeer> {
        if !installed() {
            install()?;
            if !installed() {
                bail!("Dovecot and Postfix were installed but their programs are not to be found");
            }
        }
        let dir = std::env::temp_dir().join(format!("aduan-xtask-mail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let [smtp, imap, imaps] = free_ports::<3>()?;
        let peer = MailPeer {
            smtp: SocketAddr::from(([127, 0, 0, 1], smtp)),
            imap: SocketAddr::from(([127, 0, 0, 1], imap)),
            imaps: SocketAddr::from(([127, 0, 0, 1], imaps)),
            ca: dir.join("tls/ca.pem"),
            dir,
        };
        // From here on, dropping `peer` stops whatever was started.
        peer.configure()?;
        peer.start_dovecot()?;
        peer.start_postfix()?;
        Ok(peer)
    }

    /// The home directory of a user (`Maildir/` inside).
    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.join("home").join(user)
    }

    /// The variables the tests read.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ADUAN_TEST_SMTP", self.smtp.to_string()),
            ("ADUAN_TEST_IMAP", self.imap.to_string()),
            ("ADUAN_TEST_IMAPS", self.imaps.to_string()),
            ("ADUAN_TEST_MAIL_CA", self.ca.display().to_string()),
            ("ADUAN_TEST_MAIL_DOMAIN", DOMAIN.to_owned()),
            ("ADUAN_TEST_MAIL_PASSWORD", PASSWORD.to_owned()),
        ]
    }

    fn configure(&self) -> anyhow::Result<()> {
        let d = &self.dir;
        let (uid, gid) = (id_of("-u", "mail")?, id_of("-g", "mail")?);
        let home = d.join("home");
        let pf = d.join("postfix");
        for sub in ["home", "postfix", "dovecot-state", "postfix-spool", "postfix-data"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        run(Command::new("chown").arg("postfix:postfix").arg(d.join("postfix-data")))?;
        make_certificates(&d.join("tls"))?;

        let mut users = String::new();
        let mut vmailbox = String::new();
        for u in USERS {
            let h = home.join(u);
            std::fs::create_dir_all(&h)?;
            users.push_str(&format!(
                "{u}@{DOMAIN}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}::\n",
                h.display()
            ));
            vmailbox.push_str(&format!("{u}@{DOMAIN} OK\n"));
        }
        std::fs::write(d.join("users"), users)?;
        run(Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(&home))?;
        std::fs::write(pf.join("vmailbox"), vmailbox)?;
        let dom_re = DOMAIN.replace('.', "\\.");
        std::fs::write(
            pf.join("catchall.regexp"),
            // A second plus-part (the reply token of the daemon's mails to officials, added
            // to a test's own tag: `intake+<tag>+<token>@`) is dropped from the envelope, so
            // the mail lands in the test's folder; the token stays in the `To:` header.
            format!(
                "if !/@{dom_re}$/\n/^/ {CATCHALL}@{DOMAIN}\nendif\n\
                 /^([^+@]+)\\+([^+@]+)\\+[^@]*@{dom_re}$/ ${{1}}+${{2}}@{DOMAIN}\n"
            ),
        )?;

        let dovecot = format!(
            r#"# Rendered by cargo xtask (xtask/src/mail.rs); never reads /etc/dovecot.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/dovecot-run
state_dir = {d}/dovecot-state
instance_name = aduan-xtask-{pid}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/tls/cert.pem
ssl_key = <{d}/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {d}/users
}}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
"#,
            d = d.display(),
            pid = std::process::id(),
            imap = self.imap.port(),
            imaps = self.imaps.port(),
        );
        std::fs::write(d.join("dovecot.conf"), dovecot)?;

        let main_cf = format!(
            r#"# Rendered by cargo xtask (xtask/src/mail.rs); never touches /etc/postfix.
compatibility_level = 3.6
config_directory = {pf}
queue_directory = {d}/postfix-spool
data_directory = {d}/postfix-data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
myorigin = $myhostname
mydestination =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
smtpd_banner = $myhostname ESMTP aduan-xtask
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 52428800
recipient_delimiter = +
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{pf}/vmailbox
virtual_transport = lmtp:unix:{d}/dovecot-run/lmtp
virtual_alias_maps = regexp:{pf}/catchall.regexp
# Must stay empty: it defaults to $virtual_alias_maps, whose catch-all would claim {DOMAIN}.
virtual_alias_domains =
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
# A test box: many deliveries at once into Dovecot.
lmtp_destination_concurrency_limit = 50
default_process_limit = 100
"#,
            pf = pf.display(),
            d = d.display(),
        );
        std::fs::write(pf.join("main.cf"), main_cf)?;
        let master_cf = format!(
            "# Rendered by cargo xtask: no chroot, SMTP on loopback only.\n\
             127.0.0.1:{smtp} inet n - n - - smtpd\n{}",
            "pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
",
            smtp = self.smtp.port(),
        );
        std::fs::write(pf.join("master.cf"), master_cf)?;
        Ok(())
    }

    fn start_dovecot(&self) -> anyhow::Result<()> {
        let d = &self.dir;
        // Dovecot's master keeps the stderr it inherited: give it a file, not our pipe.
        let stderr = std::fs::File::create(d.join("dovecot.stderr"))?;
        let status = Command::new("/usr/sbin/dovecot")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .context("cannot run dovecot")?;
        if !status.success() {
            bail!(
                "dovecot failed to start ({status}):\n{}{}",
                std::fs::read_to_string(d.join("dovecot.stderr")).unwrap_or_default(),
                std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
            );
        }
        wait_banner(self.imap, "* OK", &d.join("dovecot.log"))
    }

    fn start_postfix(&self) -> anyhow::Result<()> {
        let d = &self.dir;
        let log = std::fs::File::create(d.join("postfix-start.log"))?;
        let status = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(d.join("postfix"))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("cannot run postfix")?;
        if !status.success() {
            bail!(
                "postfix failed to start ({status}):\n{}{}",
                std::fs::read_to_string(d.join("postfix-start.log")).unwrap_or_default(),
                std::fs::read_to_string(d.join("postfix.log")).unwrap_or_default()
            );
        }
        wait_banner(self.smtp, "220 ", &d.join("postfix.log"))
    }

    fn pid(file: &Path) -> Option<u32> {
        let text = std::fs::read_to_string(file).ok()?;
        text.trim().parse().ok()
    }
}

/// Whether `pid` runs and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

impl Drop for MailPeer {
    fn drop(&mut self) {
        // Each master stops its own children; by PID only.
        let masters = [
            MailPeer::pid(&self.dir.join("postfix-spool/pid/master.pid")),
            MailPeer::pid(&self.dir.join("dovecot-run/master.pid")),
        ];
        for pid in masters.iter().flatten() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while masters.iter().flatten().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for pid in masters.iter().flatten().filter(|p| alive(**p)) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        if std::env::var_os("ADUAN_KEEP_MAIL_PEER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
