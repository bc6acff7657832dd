//! The one guard for URLs a provider's message names (media of Meta and Twilio): what the
//! daemon may fetch, and with which credentials.
//!
//! A webhook body names media by URL. Fetched as given, such a URL makes the daemon a proxy
//! into its own network (SSRF): `http://127.0.0.1:…/metrics`, the cloud's metadata service
//! at `169.254.169.254`, a database on `10.…`, reached directly or through a redirect from
//! an innocent-looking host. [`MediaFetcher::get`] fetches a URL only when
//!
//! - its origin (scheme, host, port) is one of the configured API endpoints
//!   ([`EgressPolicy::api_urls`]): the operator named them, so they may be on any address
//!   (the tests' fake providers are on loopback) and may be plain `http`; or
//! - it is `https` on a host of the channel's allowlist ([`EgressPolicy::hosts`]: exact
//!   names or `*.suffix` patterns) and every address the name resolves to (or the literal
//!   IP) is public: never loopback, private (RFC 1918, unique local), link-local,
//!   unspecified, carrier-grade NAT, multicast, documentation or reserved ranges, including
//!   those ranges written as IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 addresses.
//!
//! Redirects are followed by hand (at most [`MAX_REDIRECTS`]) and every hop is checked the
//! same way before it is requested. The client resolves names through [`GuardedResolver`],
//! so the addresses checked are the addresses connected to (a name can't resolve to a
//! public address for the check and a private one for the connection), and it ignores
//! proxy settings. Credentials go only to hops of the first URL's origin, and only over
//! `https` or to a configured API endpoint: never over plain HTTP to anyone else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch was refused or failed. The URL itself is never part of the message (media
/// URLs carry signed tokens); host names and addresses are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not a usable http(s) URL")]
    BadUrl,
    #[error("{0} is not an allowed media host")]
    HostNotAllowed(String),
    #[error("{host} resolves to {addr}, an internal address")]
    Internal { host: String, addr: IpAddr },
    #[error("credentials are never sent over plain HTTP to {0}")]
    Insecure(String),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("a redirect without a usable Location")]
    BadRedirect,
    #[error("download answered HTTP {0}")]
    Status(u16),
    #[error("media larger than {0} bytes")]
    TooLarge(usize),
    #[error("download failed: {0}")]
    Transport(String),
}

impl FetchError {
    /// Whether trying again later can't help (refused by policy, gone, too large).
    pub fn permanent(&self) -> bool {
        match self {
            FetchError::Status(s) => matches!(s, 400 | 401 | 403 | 404 | 410),
            FetchError::Transport(_) => false,
            _ => true,
        }
    }

    /// Whether the guard refused the URL (as opposed to the provider failing).
    pub fn refused(&self) -> bool {
        matches!(
            self,
            FetchError::BadUrl
                | FetchError::HostNotAllowed(_)
                | FetchError::Internal { .. }
                | FetchError::Insecure(_)
                | FetchError::BadRedirect
        )
    }
}

/// Whether `ip` is somewhere a fetch on a resident's or provider's say-so must not go:
/// loopback, private, link-local, unspecified, shared (CGNAT), multicast, broadcast,
/// documentation, benchmarking or reserved space. IPv6 forms that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (deprecated, ::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return v4_internal(embedded);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return v4_internal(embedded);
    }
    // 6to4 (2002:a.b.c.d::/48).
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return v4_internal(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only
}

/// A URL's origin: scheme, host (lower case, IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        let host = url.host_str()?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

/// What a channel may fetch: see the module docs.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    apis: Vec<Origin>,
    hosts: Vec<String>,
}

impl EgressPolicy {
    /// `api_urls`: the configured API endpoints (`api_url`, `graph_api_url`); `hosts`: the
    /// media hosts (`lookaside.fbsbx.com`, `*.fbcdn.net`). URLs that don't parse are
    /// ignored (configuration validation reports them).
    pub fn new<A: AsRef<str>, H: AsRef<str>>(api_urls: &[A], hosts: &[H]) -> EgressPolicy {
        EgressPolicy {
            apis: api_urls
                .iter()
                .filter_map(|u| Url::parse(u.as_ref()).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .filter_map(|u| Origin::of(&u))
                .collect(),
            hosts: hosts
                .iter()
                .map(|h| h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    fn is_api(&self, origin: &Origin) -> bool {
        self.apis.contains(origin)
    }

    /// Whether `url` is on the origin of a configured API endpoint (where a channel's
    /// account credentials belong).
    pub fn is_api_url(&self, url: &str) -> bool {
        Url::parse(url).ok().and_then(|u| Origin::of(&u)).is_some_and(|o| self.is_api(&o))
    }

    /// Whether a name is the host of a configured API endpoint (its addresses may be
    /// internal).
    fn is_api_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.apis.iter().any(|o| o.host.eq_ignore_ascii_case(host))
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|rule| match rule.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => rule == host,
        })
    }

    /// Checks one URL before it is requested (no IO): an API origin, or `https` on an
    /// allowed host that is not a literal internal address. Names are checked for their
    /// addresses when they are resolved ([`GuardedResolver`]).
    pub fn check(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(FetchError::BadUrl);
        }
        let origin = Origin::of(url).ok_or(FetchError::BadUrl)?;
        if self.is_api(&origin) {
            return Ok(());
        }
        if url.scheme() != "https" || !self.host_allowed(&origin.host) {
            return Err(FetchError::HostNotAllowed(origin.host));
        }
        if let Ok(ip) = origin.host.parse::<IpAddr>()
            && is_internal(ip)
        {
            return Err(FetchError::Internal { host: origin.host, addr: ip });
        }
        Ok(())
    }

    /// Whether credentials may be sent to `url`: over `https`, or to a configured API
    /// endpoint.
    pub fn credentials_ok(&self, url: &Url) -> bool {
        Origin::of(url).is_some_and(|o| o.scheme == "https" || self.is_api(&o))
    }

    /// Checks every address `host` resolved to.
    pub fn check_addrs(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), FetchError> {
        if self.is_api_host(host) {
            return Ok(());
        }
        match addrs.iter().find(|a| is_internal(a.ip())) {
            Some(a) => Err(FetchError::Internal { host: host.to_owned(), addr: a.ip() }),
            None => Ok(()),
        }
    }
}

/// The DNS resolver of a [`MediaFetcher`]'s client: the system's, then
/// [`EgressPolicy::check_addrs`] on every address (all or nothing).
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            policy
                .check_addrs(&host, &addrs)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let out: Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

/// A redirect policy for clients of one configured API (Telegram's Bot API, whose file
/// URLs carry the bot token): redirects within the same origin are followed (at most
/// [`MAX_REDIRECTS`]), a redirect anywhere else is an error.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let next = Origin::of(attempt.url());
        let prev = attempt.previous().last().and_then(Origin::of);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(FetchError::TooManyRedirects)
        } else if next.is_none() || next != prev {
            let host = next.map(|o| o.host).unwrap_or_default();
            attempt.error(FetchError::HostNotAllowed(host))
        } else {
            attempt.follow()
        }
    })
}

/// Credentials for a media fetch.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    None,
    Bearer(&'a str),
    Basic { user: &'a str, password: &'a str },
}

/// A fetched body and its `Content-Type` (without parameters), if it had one.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// Fetches media under an [`EgressPolicy`].
#[derive(Debug, Clone)]
pub struct MediaFetcher {
    policy: Arc<EgressPolicy>,
    http: reqwest::Client,
}

impl MediaFetcher {
    pub fn new(policy: EgressPolicy) -> MediaFetcher {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        MediaFetcher { policy, http }
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// GETs `url` (following allowed redirects) and reads at most `max_bytes`.
    pub async fn get(
        &self,
        url: &str,
        credentials: Credentials<'_>,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let mut url = Url::parse(url).map_err(|_| FetchError::BadUrl)?;
        let first = Origin::of(&url).ok_or(FetchError::BadUrl)?;
        let has_credentials = !matches!(credentials, Credentials::None);
        if has_credentials && !self.policy.credentials_ok(&url) {
            return Err(FetchError::Insecure(first.host));
        }
        for _ in 0..=MAX_REDIRECTS {
            self.policy.check(&url)?;
            let mut req = self.http.get(url.clone());
            // Credentials stay with the origin they were meant for.
            if Origin::of(&url).as_ref() == Some(&first) {
                req = match credentials {
                    Credentials::None => req,
                    Credentials::Bearer(token) => req.bearer_auth(token),
                    Credentials::Basic { user, password } => req.basic_auth(user, Some(password)),
                };
            }
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| url.join(loc).ok())
                    .ok_or(FetchError::BadRedirect)?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
                .filter(|t| !t.is_empty());
            let bytes = crate::body::read_limited(resp, max_bytes).await.map_err(|e| match e {
                crate::body::BodyError::TooLarge(n) => FetchError::TooLarge(n),
                crate::body::BodyError::Read(e) => transport(e),
            })?;
            return Ok(Fetched { bytes, content_type });
        }
        Err(FetchError::TooManyRedirects)
    }
}

/// A transport error: the guard's own refusal when the resolver refused, else the error
/// without its URL.
fn transport(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<FetchError>() {
            return refused.clone();
        }
        source = err.source();
    }
    let mut text = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&err.to_string());
        source = err.source();
    }
    // The URL (with its signed token) is not part of the text.
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    FetchError::Transport(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_recognised_in_every_spelling() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            // IPv4 inside IPv6: mapped, compatible, NAT64, 6to4.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
        ] {
            assert!(is_internal(ip(internal)), "{internal} must count as internal");
        }
        for public in [
            "157.240.1.35",
            "31.13.64.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a03:2880:f10c::1",
            "::ffff:157.240.1.35",
            "64:ff9b::9df0:123",
            "2002:9df0:123::1",
        ] {
            assert!(!is_internal(ip(public)), "{public} is public");
        }
    }

    fn policy() -> EgressPolicy {
        EgressPolicy::new(
            &["http://127.0.0.1:8080/v21.0", "https://api.twilio.com"],
            &["*.fbcdn.net", "lookaside.fbsbx.com", "10.0.0.5"],
        )
    }

    fn check(url: &str) -> Result<(), FetchError> {
        policy().check(&Url::parse(url).unwrap())
    }

    #[test]
    fn only_api_origins_and_https_on_allowed_hosts_pass() {
        for ok in [
            "http://127.0.0.1:8080/cdn/1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
            "https://LOOKASIDE.fbsbx.com./x",
            "https://scontent.xx.fbcdn.net/v/t1/a.jpg",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8081/cdn/1",
            "https://127.0.0.1:8080/cdn/1",
            "http://localhost:8080/cdn/1",
            "http://lookaside.fbsbx.com/x",
            "https://fbcdn.net/x",
            "https://evilfbcdn.net/x",
            "https://fbcdn.net.evil.example/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:127.0.0.1]/x",
            "http://api.twilio.com/2010-04-01/x",
        ] {
            assert!(matches!(check(refused), Err(FetchError::HostNotAllowed(_))), "{refused}");
        }
        assert!(matches!(check("https://10.0.0.5/x"), Err(FetchError::Internal { .. })));
        assert_eq!(check("file:///etc/passwd"), Err(FetchError::BadUrl));
        assert_eq!(check("https://u:p@lookaside.fbsbx.com/x"), Err(FetchError::BadUrl));
    }

    #[test]
    fn resolved_addresses_are_all_checked() {
        let p = policy();
        let a = |s: &str| SocketAddr::new(ip(s), 0);
        assert_eq!(p.check_addrs("lookaside.fbsbx.com", &[a("157.240.1.35")]), Ok(()));
        for addrs in [
            vec![a("127.0.0.1")],
            vec![a("157.240.1.35"), a("10.0.0.1")],
            vec![a("::ffff:192.168.0.1")],
        ] {
            assert!(matches!(
                p.check_addrs("lookaside.fbsbx.com", &addrs),
                Err(FetchError::Internal { .. })
            ));
        }
        // The configured API's own host may be anywhere.
        let local = EgressPolicy::new(&["http://localhost:9000"], &[] as &[&str]);
        assert_eq!(local.check_addrs("localhost", &[a("127.0.0.1")]), Ok(()));
    }

    #[test]
    fn credentials_need_https_or_the_configured_api() {
        let p = policy();
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(p.credentials_ok(&u("http://127.0.0.1:8080/cdn/1")));
        assert!(p.credentials_ok(&u("https://api.twilio.com/x")));
        assert!(p.credentials_ok(&u("https://lookaside.fbsbx.com/x")));
        assert!(!p.credentials_ok(&u("http://api.twilio.com/x")));
        assert!(!p.credentials_ok(&u("http://lookaside.fbsbx.com/x")));
    }

    /// The requests a test server got: path and Authorization.
    type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// A one-route-per-path HTTP/1.1 server on loopback that records the requests it gets
    /// (path and Authorization).
    struct Server {
        base: String,
        seen: Log,
    }

    async fn server(routes: Vec<(&'static str, String)>) -> Server {
        let routes = Arc::new(routes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let me = base.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let log = log.clone();
                let me = me.clone();
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let auth = head
                        .lines()
                        .find_map(|l| l.strip_prefix("authorization: "))
                        .map(str::to_owned);
                    log.lock().unwrap().push((path.clone(), auth));
                    let answer = routes
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map(|(_, a)| a.replace("{me}", &me))
                        .unwrap_or_else(|| "404 -".into());
                    let resp = match answer.split_once(' ') {
                        Some(("302", loc)) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {loc}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        ),
                        Some(("200", body)) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Server { base, seen }
    }

    #[tokio::test]
    async fn redirects_are_checked_at_every_hop_and_credentials_stay_home() {
        // `internal` plays a service on the daemon's network; `api` the configured provider.
        let internal = server(vec![("/secret", "200 internal data".into())]).await;
        let other = server(vec![("/file", "200 other bytes".into())]).await;
        let api = server(vec![
            ("/same", "302 /file".into()),
            ("/file", "200 PNG bytes".into()),
            ("/away", format!("302 {}/secret", internal.base)),
            ("/cross", format!("302 {}/file", other.base)),
            ("/loop", "302 {me}/loop".into()),
        ])
        .await;
        let fetcher = MediaFetcher::new(EgressPolicy::new(
            &[api.base.as_str(), other.base.as_str()],
            &["lookaside.fbsbx.com", "localhost"],
        ));
        let basic = Credentials::Basic { user: "AC1", password: "auth-token-0123456789" };

        // Same-origin redirect: followed, credentials on both hops.
        let got = fetcher.get(&format!("{}/same", api.base), basic, 1024).await.unwrap();
        assert_eq!(got.bytes, b"PNG bytes");
        assert_eq!(got.content_type.as_deref(), Some("image/png"));
        let seen = api.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|(_, a)| a.as_deref().is_some_and(|a| a.starts_with("Basic "))));

        // To another allowed origin: followed, but the credentials stay behind.
        let got = fetcher.get(&format!("{}/cross", api.base), basic, 1024).await.unwrap();
        assert_eq!(got.bytes, b"other bytes");
        assert_eq!(other.seen.lock().unwrap().clone(), [("/file".to_owned(), None)]);

        // An internal URL, directly or through a redirect: never requested.
        let direct = format!("{}/secret", internal.base);
        assert!(matches!(
            fetcher.get(&direct, Credentials::None, 1024).await,
            Err(FetchError::HostNotAllowed(_))
        ));
        let err = fetcher.get(&format!("{}/away", api.base), basic, 1024).await.unwrap_err();
        assert!(matches!(err, FetchError::HostNotAllowed(_)), "{err:?}");
        assert!(err.permanent() && err.refused());

        // Too large; too many redirects.
        assert_eq!(
            fetcher.get(&format!("{}/file", api.base), Credentials::None, 3).await.unwrap_err(),
            FetchError::TooLarge(3)
        );
        assert_eq!(
            fetcher.get(&format!("{}/loop", api.base), Credentials::None, 3).await.unwrap_err(),
            FetchError::TooManyRedirects
        );
        // Credentials over plain HTTP to a host that is not the configured API: refused
        // before anything is sent.
        assert!(matches!(
            fetcher.get("http://lookaside.fbsbx.com/x", basic, 1024).await,
            Err(FetchError::Insecure(_))
        ));
        // An allowed name that resolves to loopback is refused by the resolver.
        let port = internal.base.rsplit(':').next().unwrap();
        let err = fetcher
            .get(&format!("https://localhost:{port}/secret"), Credentials::None, 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Internal { .. }), "{err:?}");
        assert!(internal.seen.lock().unwrap().is_empty(), "nothing reached the internal service");
    }

    #[tokio::test]
    async fn an_api_client_follows_redirects_only_within_its_origin() {
        let internal = server(vec![("/secret", "200 internal data".into())]).await;
        let api = server(vec![
            ("/file/botT/a.jpg", "302 /file/botT/b.jpg".into()),
            ("/file/botT/b.jpg", "200 JPEG".into()),
            ("/file/botT/c.jpg", format!("302 {}/secret", internal.base)),
        ])
        .await;
        let http = reqwest::Client::builder().redirect(same_origin_redirects()).build().unwrap();
        let ok = http.get(format!("{}/file/botT/a.jpg", api.base)).send().await.unwrap();
        assert_eq!(ok.text().await.unwrap(), "JPEG");
        let err = http.get(format!("{}/file/botT/c.jpg", api.base)).send().await.unwrap_err();
        assert!(err.is_redirect(), "{err:?}");
        assert!(internal.seen.lock().unwrap().is_empty(), "the redirect was not followed");
    }
}
