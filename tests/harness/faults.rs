//! Faults to inflict on a running daemon without touching the peers other tests share:
//!
//! * [`Proxy`]: a TCP relay between the daemon and a real server (Postfix, Dovecot) that
//!   can be "stopped" like a server restart — the listener closes (new connections are
//!   refused) and every open connection is cut — and started again on the same port. It can
//!   also cut by itself once a given number of bytes came back from the server: in the middle
//!   of an answer, such as an IMAP FETCH.
//! * [`PgCluster`]: a private PostgreSQL cluster (initdb + pg_ctl) that a test really stops
//!   and starts.
//! * [`Tmpfs`]: a small size-limited tmpfs mounted over a directory (the attachment store),
//!   which a test fills up, remounts read-only and gives room again. Works as root, where
//!   `chmod` stops nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::AbortHandle;

use crate::full_suite;

/// When the proxy cuts by itself.
#[derive(Debug, Clone)]
pub enum Cut {
    /// Once the bytes relayed from the server reach this total: in the middle of an answer.
    Downstream(u64),
    /// When the client sends a chunk containing these bytes (e.g. `b"MOVE "`), which is not
    /// forwarded: the server never gets the command.
    Upstream(Vec<u8>),
}

/// A cut the proxy performs by itself.
struct Trigger {
    when: Cut,
    done: tokio::sync::oneshot::Sender<u64>,
}

#[derive(Default)]
struct ProxyState {
    /// The accept loop while the proxy is up.
    acceptor: Option<AbortHandle>,
    /// The relays of open connections.
    conns: Vec<AbortHandle>,
    trigger: Option<Trigger>,
}

struct ProxyInner {
    addr: SocketAddr,
    target: SocketAddr,
    /// Bytes relayed from the server to clients, over all connections.
    downstream: AtomicU64,
    accepted: AtomicUsize,
    cuts: AtomicUsize,
    state: Mutex<ProxyState>,
}

/// A TCP relay on 127.0.0.1 to `target`; see the module documentation.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<ProxyInner>,
}

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // The same port again right after the old listener closed.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl Proxy {
    /// A running proxy to `target` on a free loopback port.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let proxy = Proxy {
            inner: Arc::new(ProxyInner {
                addr,
                target,
                downstream: AtomicU64::new(0),
                accepted: AtomicUsize::new(0),
                cuts: AtomicUsize::new(0),
                state: Mutex::new(ProxyState::default()),
            }),
        };
        proxy.serve(listener);
        proxy
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Bytes relayed from the server so far.
    pub fn downstream(&self) -> u64 {
        self.inner.downstream.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Connections cut by [`Proxy::stop`] (or a trigger) so far.
    pub fn cut_connections(&self) -> usize {
        self.inner.cuts.load(Ordering::SeqCst)
    }

    pub fn is_up(&self) -> bool {
        self.state().acceptor.is_some()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                me.inner.accepted.fetch_add(1, Ordering::SeqCst);
                let relay = tokio::spawn(me.clone().relay(client));
                let mut st = me.state();
                st.conns.retain(|c| !c.is_finished());
                st.conns.push(relay.abort_handle());
            }
        });
        self.state().acceptor = Some(task.abort_handle());
    }

    async fn relay(self, client: tokio::net::TcpStream) {
        let Ok(server) = tokio::net::TcpStream::connect(self.inner.target).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (mut client_r, mut client_w) = client.into_split();
        let (mut server_r, mut server_w) = server.into_split();
        let up = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let fire = {
                    let mut st = self.state();
                    let hit = matches!(
                        st.trigger.as_ref().map(|t| &t.when),
                        Some(Cut::Upstream(p)) if buf[..n].windows(p.len().max(1)).any(|w| w == &p[..])
                    );
                    if hit { st.trigger.take() } else { None }
                };
                if let Some(t) = fire {
                    self.stop();
                    let _ = t.done.send(self.downstream());
                    return;
                }
                if server_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = server_w.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match server_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Forward up to the trigger's byte, then cut: the client sees half an answer.
                let (forward, fire) = {
                    let mut st = self.state();
                    let before = self.inner.downstream.load(Ordering::SeqCst);
                    match st.trigger.as_ref().map(|t| &t.when) {
                        Some(Cut::Downstream(at)) if before + n as u64 >= *at => {
                            let at = *at;
                            let forward = usize::try_from(at.saturating_sub(before)).unwrap_or(n);
                            (forward.min(n), st.trigger.take())
                        }
                        _ => (n, None),
                    }
                };
                if forward > 0 && client_w.write_all(&buf[..forward]).await.is_err() {
                    break;
                }
                let total = self.inner.downstream.fetch_add(forward as u64, Ordering::SeqCst)
                    + forward as u64;
                if let Some(t) = fire {
                    self.stop();
                    let _ = t.done.send(total);
                    return;
                }
            }
            let _ = client_w.shutdown().await;
        };
        tokio::join!(up, down);
    }

    /// Like a server going down: the listener closes (connections are refused) and every
    /// open connection is cut.
    pub fn stop(&self) {
        let mut st = self.state();
        if let Some(a) = st.acceptor.take() {
            a.abort();
        }
        for c in st.conns.drain(..) {
            if !c.is_finished() {
                self.inner.cuts.fetch_add(1, Ordering::SeqCst);
            }
            c.abort();
        }
    }

    /// Up again on the same port. The old listener may take a moment to close: retries
    /// for up to 5 s.
    pub async fn resume(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match listen(self.inner.addr) {
                Ok(listener) => {
                    self.serve(listener);
                    return;
                }
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the proxy cannot listen on {} again: {e}",
                        self.inner.addr
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Arms a cut (replacing one armed before): once `bytes` more bytes came back from the
    /// server (counted from now), the proxy forwards exactly up to there and then stops (see
    /// [`Proxy::stop`]). The receiver gets the downstream total at the cut.
    pub fn cut_after(&self, bytes: u64) -> tokio::sync::oneshot::Receiver<u64> {
        self.cut(Cut::Downstream(self.downstream().saturating_add(bytes)))
    }

    /// Arms a cut (replacing one armed before); the receiver gets the downstream total at
    /// the cut.
    pub fn cut(&self, when: Cut) -> tokio::sync::oneshot::Receiver<u64> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.state().trigger = Some(Trigger { when, done });
        rx
    }

    /// Disarms the armed cut, if any.
    pub fn disarm(&self) {
        self.state().trigger = None;
    }
}

impl Drop for ProxyInner {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = st.acceptor.take() {
            a.abort();
        }
        for c in st.conns.drain(..) {
            c.abort();
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/<v>/bin` with `initdb` and `pg_ctl`.
fn pg_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A private PostgreSQL cluster in a temp dir on a free loopback port, stopped and removed
/// on drop. As root the server runs as the `postgres` system user (initdb refuses root).
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

impl PgCluster {
    /// `None` (after a skip notice) when the PostgreSQL server binaries are missing outside
    /// the full suite; panics under `ADUAN_TEST_FULL` (where `cargo xtask test` installed
    /// them for its own cluster) and when the cluster does not start.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bindir() else {
            assert!(
                !full_suite(),
                "ADUAN_TEST_FULL is set but there are no PostgreSQL server binaries under \
                 /usr/lib/postgresql/*/bin (initdb, pg_ctl): the PostgreSQL restart test \
                 needs a private cluster"
            );
            eprintln!("SKIPPED: no initdb/pg_ctl under /usr/lib/postgresql; restart test not run");
            return None;
        };
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            let has_user = Command::new("id")
                .arg(user)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(has_user, "running as root, but there is no `{user}` user to run PostgreSQL");
        }
        let dir = tempfile::Builder::new().prefix("aduan-e2e-pg-").tempdir().expect("temp dir");
        if let Some(user) = &run_as {
            let ok =
                Command::new("chown").arg(user).arg(dir.path()).status().is_ok_and(|s| s.success());
            assert!(ok, "chown {user} {}", dir.path().display());
        }
        let cluster = PgCluster { dir, bin, run_as, port: crate::free_port() };
        let data = cluster.data();
        cluster.run(&[
            "initdb",
            "-D",
            &data,
            "-U",
            "aduan",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        cluster.start_server();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `postgres://aduan@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://aduan@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn run(&self, args: &[&str]) {
        let exe = self.bin.join(args[0]);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(&args[1..]).current_dir(self.dir.path()).stdin(Stdio::null());
        let out = crate::run_to_completion(&mut cmd, "", Duration::from_secs(90));
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}{}",
            args[0],
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (on the same port as before) and waits until it takes connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        self.run(&["pg_ctl", "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops the server: `mode` is pg_ctl's `fast` (sessions are ended) or `immediate`
    /// (like a crash). Returns when it is down.
    pub fn stop_server(&self, mode: &str) {
        let data = self.data();
        self.run(&["pg_ctl", "-D", &data, "-m", mode, "-w", "-t", "60", "stop"]);
    }

    /// Whether something accepts connections on the cluster's port.
    pub fn accepts_connections(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A size-limited tmpfs mounted over a directory; unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `64k`, `4m`) over `path` (created if
    /// missing). `None` (after a skip notice) when mounting is impossible (not root, no
    /// mount permission in this container) outside the full suite; panics under
    /// `ADUAN_TEST_FULL`: CI runs the suite as root and the test must run there.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("create the mount point");
        let p = path.display().to_string();
        match mount(&["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs", &p]) {
            Ok(()) => Some(Tmpfs { path: path.to_path_buf() }),
            Err(why) => {
                assert!(
                    !full_suite(),
                    "ADUAN_TEST_FULL is set but a tmpfs can't be mounted for the disk-full \
                     test (it needs root and mount permission): {why}"
                );
                eprintln!("SKIPPED: cannot mount a tmpfs ({why}); disk-full test not run");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `mount -o remount,OPTIONS`: e.g. `ro`, `rw`, `size=4m`.
    pub fn remount(&self, options: &str) {
        let p = self.path.display().to_string();
        mount(&["-o", &format!("remount,{options}"), &p]).unwrap_or_else(|why| panic!("{why}"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding a file open does not keep the mount.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
