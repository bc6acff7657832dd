//! IMAP connections: TCP, optionally TLS (implicit or STARTTLS, rustls), login, and the few
//! commands the poller needs, each bounded by a timeout so a dead connection is noticed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::EmailError;

/// How long one IMAP command (or the connection, or the login) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapTls {
    /// Plain TCP (a mail server on the same host or a trusted network only).
    None,
    /// Plain TCP upgraded with STARTTLS before login.
    StartTls,
    /// TLS from the first byte (port 993).
    Tls,
}

impl std::str::FromStr for ImapTls {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(ImapTls::None),
            "starttls" => Ok(ImapTls::StartTls),
            "tls" => Ok(ImapTls::Tls),
            other => Err(EmailError::Config(format!(
                "imap_tls {other:?} is not one of none, starttls, tls"
            ))),
        }
    }
}

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct ImapAccount {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    /// PEM file of the CA(s) to trust instead of the public web roots.
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: crate::Secret,
}

/// A TCP stream, with or without TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type Session = async_imap::Session<Stream>;

/// Runs `fut` with [`COMMAND_TIMEOUT`]; a timeout is an error like any other.
pub async fn timed<T, E: Into<EmailError>>(
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, EmailError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(EmailError::Timeout(what)),
    }
}

/// A TLS connector trusting the certificates of `ca_file`, or the public web roots.
pub fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, EmailError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| EmailError::Config(format!("imap_ca_file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    EmailError::Config(format!("imap_ca_file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    EmailError::Config(format!("imap_ca_file {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(EmailError::Config(format!(
                    "imap_ca_file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmailError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn tls_wrap(
    tcp: TcpStream,
    account: &ImapAccount,
    connector: &TlsConnector,
) -> Result<Stream, EmailError> {
    let name = rustls_pki_types::ServerName::try_from(account.host.clone()).map_err(|_| {
        EmailError::Config(format!("imap_host {:?} is not a host name", account.host))
    })?;
    let tls = timed("TLS handshake", connector.connect(name, tcp)).await?;
    Ok(Stream::Tls(Box::new(tls)))
}

async fn greeting(client: &mut async_imap::Client<Stream>) -> Result<(), EmailError> {
    match timed("greeting", client.read_response()).await? {
        Some(_) => Ok(()),
        None => {
            Err(EmailError::Imap("the server closed the connection before its greeting".into()))
        }
    }
}

/// Connects and logs in.
pub async fn connect(
    account: &ImapAccount,
    connector: &TlsConnector,
) -> Result<Session, EmailError> {
    let tcp = timed("connect", TcpStream::connect((account.host.as_str(), account.port))).await?;
    let _ = tcp.set_nodelay(true);
    let client = match account.tls {
        ImapTls::None => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client).await?;
            client
        }
        ImapTls::Tls => {
            let mut client = async_imap::Client::new(tls_wrap(tcp, account, connector).await?);
            greeting(&mut client).await?;
            client
        }
        ImapTls::StartTls => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client).await?;
            timed("STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await?;
            let Stream::Plain(tcp) = client.into_inner() else {
                return Err(EmailError::Imap("STARTTLS on a TLS stream".into()));
            };
            // No greeting after STARTTLS.
            async_imap::Client::new(tls_wrap(tcp, account, connector).await?)
        }
    };
    let login = client.login(&account.user, account.password.expose());
    match tokio::time::timeout(COMMAND_TIMEOUT, login).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(EmailError::Login(e.to_string())),
        Err(_) => Err(EmailError::Timeout("login")),
    }
}

/// What the server offers after login (capabilities may change with authentication).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub idle: bool,
    pub r#move: bool,
    pub uidplus: bool,
}

pub async fn capabilities(session: &mut Session) -> Result<Capabilities, EmailError> {
    let caps = timed("CAPABILITY", session.capabilities()).await?;
    Ok(Capabilities {
        idle: caps.has_str("IDLE"),
        r#move: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    })
}

/// Creates `mailbox` unless it exists.
pub async fn ensure_mailbox(session: &mut Session, mailbox: &str) -> Result<(), EmailError> {
    let exists = {
        // async-imap sends the pattern as it is: quote it (names may hold spaces).
        let pattern = format!("\"{}\"", mailbox.replace('\\', "\\\\").replace('"', "\\\""));
        let names = timed("LIST", session.list(Some(""), Some(&pattern))).await?;
        let names: Vec<_> = timed("LIST", names.try_collect::<Vec<_>>()).await?;
        names.iter().any(|n| n.name() == mailbox)
    };
    if !exists {
        match timed("CREATE", session.create(mailbox)).await {
            Ok(()) => {}
            // Created meanwhile by someone else.
            Err(EmailError::Imap(e)) if e.contains("exists") || e.contains("EXISTS") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `UID SEARCH UID <after+1>:*` without messages marked deleted, in order; `*` matches
/// the highest UID even when it is below `after`, so those are filtered out.
pub async fn uids_after(session: &mut Session, after: u32) -> Result<Vec<u32>, EmailError> {
    let query = format!("UID {}:* NOT DELETED", after.saturating_add(1));
    let found: HashSet<u32> = timed("UID SEARCH", session.uid_search(query)).await?;
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > after).collect();
    uids.sort_unstable();
    Ok(uids)
}

/// A compact UID set: `3:5,9`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// One fetched mail.
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
    pub internal_date: Option<chrono::DateTime<chrono::Utc>>,
}

/// `UID FETCH <set> (UID RFC822.SIZE)`: every message's size, before any body is fetched,
/// in UID order. Messages expunged meanwhile are absent.
pub async fn sizes(session: &mut Session, uids: &[u32]) -> Result<Vec<(u32, u64)>, EmailError> {
    let set = uid_set(uids);
    let mut stream = timed("UID FETCH", session.uid_fetch(&set, "(UID RFC822.SIZE)")).await?;
    let mut out = Vec::with_capacity(uids.len());
    while let Some(f) = timed("UID FETCH", stream.try_next()).await? {
        if let Some(uid) = f.uid
            && uids.contains(&uid)
        {
            out.push((uid, u64::from(f.size.unwrap_or(0))));
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|(uid, _)| *uid);
    Ok(out)
}

/// `UID FETCH <set> (UID INTERNALDATE BODY.PEEK[])`: the raw messages, without setting
/// `\Seen`. Messages expunged meanwhile are simply absent. Each response is copied out and
/// dropped as it arrives (a response holds the read buffer it was parsed from, which may
/// hold the next messages too), so a batch is held about once, not several times.
pub async fn fetch(session: &mut Session, uids: &[u32]) -> Result<Vec<Fetched>, EmailError> {
    fetch_section(session, uids, "(UID INTERNALDATE BODY.PEEK[])").await
}

/// Only the header of messages (`BODY.PEEK[HEADER]`), as [`Fetched`].
pub async fn fetch_headers(
    session: &mut Session,
    uids: &[u32],
) -> Result<Vec<Fetched>, EmailError> {
    fetch_section(session, uids, "(UID INTERNALDATE BODY.PEEK[HEADER])").await
}

async fn fetch_section(
    session: &mut Session,
    uids: &[u32],
    items: &str,
) -> Result<Vec<Fetched>, EmailError> {
    let set = uid_set(uids);
    let mut stream = timed("UID FETCH", session.uid_fetch(&set, items)).await?;
    let mut out: Vec<Fetched> = Vec::with_capacity(uids.len());
    while let Some(f) = timed("UID FETCH", stream.try_next()).await? {
        let Some(uid) = f.uid.filter(|u| uids.contains(u)) else { continue };
        let raw = f.body().or_else(|| f.header()).unwrap_or_default().to_vec();
        let internal_date = f.internal_date().map(|d| d.to_utc());
        drop(f);
        out.push(Fetched { uid, raw, internal_date });
    }
    out.sort_by_key(|f| f.uid);
    out.dedup_by_key(|f| f.uid);
    Ok(out)
}

/// Moves messages to `mailbox`: `UID MOVE` when offered, else `UID COPY` + `\Deleted` +
/// `UID EXPUNGE` (UIDPLUS), else `EXPUNGE` as the last resort.
pub async fn move_to(
    session: &mut Session,
    caps: Capabilities,
    uids: &[u32],
    mailbox: &str,
) -> Result<(), EmailError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    if caps.r#move {
        return timed("UID MOVE", session.uid_mv(&set, mailbox)).await;
    }
    timed("UID COPY", session.uid_copy(&set, mailbox)).await?;
    {
        let stored =
            timed("UID STORE", session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)")).await?;
        let _: Vec<_> = timed("UID STORE", stored.try_collect::<Vec<_>>()).await?;
    }
    if caps.uidplus {
        let expunged = timed("UID EXPUNGE", session.uid_expunge(&set)).await?;
        let _: Vec<_> = timed("UID EXPUNGE", expunged.try_collect::<Vec<_>>()).await?;
    } else {
        let expunged = timed("EXPUNGE", session.expunge()).await?;
        let _: Vec<_> = timed("EXPUNGE", expunged.try_collect::<Vec<_>>()).await?;
    }
    Ok(())
}

/// Drops the unsolicited responses (`EXISTS`, `EXPUNGE`) queued on the session; the
/// poller searches instead of tracking them.
pub fn drain_unsolicited(session: &mut Session) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[5, 3, 4, 9, 11, 10, 9]), "3:5,9:11");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!("starttls".parse::<ImapTls>().unwrap(), ImapTls::StartTls);
        assert!("ssl".parse::<ImapTls>().is_err());
    }
}
