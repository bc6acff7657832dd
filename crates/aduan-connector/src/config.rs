//! Channel configuration: each channel crate owns its `[channels.<key>]` section.
//!
//! A section is a plain deserialisable struct in its channel crate (every key optional or
//! defaulted, unknown keys refused) that implements [`ChannelConfig`]: its table name
//! ([`ChannelConfig::KEY`]), whether it is enabled, its [`Problem`]s for `check-config`,
//! and the settings its connector runs with ([`ChannelConfig::settings`], secrets read,
//! defaults applied). The binary only lists the sections (`crates/aduan/src/config.rs`,
//! `Channels`) and builds the connectors of the enabled ones; adding a key to a channel is
//! one field in its section (plus its check and its use in `settings`).
//!
//! Secrets are [`Secret`]s everywhere: never printed (not by `Debug`, not in a problem),
//! given inline or as `<key>_file` ([`Check::secret`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A secret value: never printed, not even by `Debug` or in a configuration error.
///
/// A secret is text, but one written without quotes in TOML (`secret = 987654321`) or given
/// as `ADUAN__…=987654321` arrives as a number or a boolean: it is taken as the text it was
/// written as (the binary's environment provider keeps such a value's text exactly).
/// A float or anything else is refused with a message that names the key, never the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Secret material that is not text (a key of random bytes): the same never-printed
/// `Debug` as [`Secret`], so a struct holding it can derive `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redacted(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        use serde::de::Error;
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret written as a string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_char<E: Error>(self, v: char) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u128<E: Error>(self, v: u128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i128<E: Error>(self, v: i128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Secret, E> {
                // Its text is already lost (`1.50` reads as 1.5): refuse, without the value.
                Err(E::custom(
                    "a secret must be written as a string (in quotes); the value is not shown",
                ))
            }
            fn visit_bytes<E: Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(E::custom("a secret must be text; the value is not shown"))
            }
        }
        d.deserialize_any(Text)
    }
}

/// One thing wrong with the configuration, at a key path like `channels.email.imap_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Problems as one message, a line each (for errors past `check-config`).
pub fn problems_text(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// What every channel's connector is built with, from the core sections.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// `[storage] dir`: the attachment store.
    pub attachments_dir: PathBuf,
    /// `[server] public_url`, without a trailing `/`.
    pub public_url: String,
}

/// A `[channels.<KEY>]` section, owned by its channel crate.
pub trait ChannelConfig:
    Default + Clone + PartialEq + fmt::Debug + Serialize + serde::de::DeserializeOwned
{
    /// The table name under `[channels]`.
    const KEY: &'static str;
    /// What the connector runs with.
    type Settings;
    fn enabled(&self) -> bool;
    /// Every problem of the section, at full key paths (`channels.<KEY>.<key>`), whether
    /// enabled or not (a malformed value is wrong either way). Reads `*_file` secrets.
    fn problems(&self) -> Vec<Problem>;
    /// The settings, secrets read and defaults applied. Fails only on what
    /// [`ChannelConfig::problems`] reports (or a secret file that changed since).
    fn settings(&self, cx: &BuildContext) -> Result<Self::Settings, Vec<Problem>>;
}

/// The object-safe half of [`ChannelConfig`], for iterating the sections.
pub trait Section {
    fn key(&self) -> &'static str;
    fn enabled(&self) -> bool;
    fn problems(&self) -> Vec<Problem>;
}

impl<T: ChannelConfig> Section for T {
    fn key(&self) -> &'static str {
        T::KEY
    }
    fn enabled(&self) -> bool {
        ChannelConfig::enabled(self)
    }
    fn problems(&self) -> Vec<Problem> {
        ChannelConfig::problems(self)
    }
}

/// The fewest bytes a secret that authenticates webhooks may have (Kannel's `secret`,
/// Twilio's `auth_token`, the Android gateway's `signing_key`, Meta's `app_secret` and
/// `verify_token`, Telegram's `secret_token`, X's `consumer_secret`): an empty or short
/// one lets anyone sign requests.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// Collects the problems of one section; keys are given relative to it (`imap_host`).
#[derive(Debug)]
pub struct Check {
    prefix: String,
    pub problems: Vec<Problem>,
}

impl Check {
    /// For `[channels.<key>]`.
    pub fn channel(key: &str) -> Check {
        Check { prefix: format!("channels.{key}"), problems: Vec::new() }
    }

    /// The full path of a key of this section.
    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        self.problems.push(Problem { path, message: message.into() });
    }

    pub fn finish(self) -> Vec<Problem> {
        self.problems
    }

    /// Resolves a secret given inline or as `<key>_file`; a problem for both or a bad file.
    pub fn secret(
        &mut self,
        key: &str,
        inline: &Option<Secret>,
        file: &Option<PathBuf>,
    ) -> Option<Secret> {
        let path = self.path(key);
        match resolve_secret(&path, inline, file) {
            Ok(s) => s,
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }

    /// A key that must be set when the channel is enabled.
    pub fn require<T>(&mut self, key: &str, value: &Option<T>) {
        if value.is_none() {
            self.push(key, "is required when the channel is enabled");
        }
    }

    /// A webhook secret must have at least [`MIN_WEBHOOK_SECRET_BYTES`]. The message names
    /// the key, never the value.
    pub fn strong(&mut self, key: &str, file: &Option<PathBuf>, value: &Option<Secret>) {
        let Some(v) = value else { return };
        let n = v.0.len();
        if n < MIN_WEBHOOK_SECRET_BYTES {
            let what = if n == 0 { "is empty" } else { "is too short" };
            let from = if file.is_some() { " (the file's contents)" } else { "" };
            let path = secret_key(&self.path(key), file);
            self.problems.push(Problem {
                path,
                message: format!(
                    "{what}{from}: a secret that authenticates webhooks needs at least \
                     {MIN_WEBHOOK_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                ),
            });
        }
    }

    /// A token or password that is given must not be empty.
    pub fn not_empty(&mut self, key: &str, file: &Option<PathBuf>, value: &Option<Secret>) {
        if value.as_ref().is_some_and(|v| v.0.trim().is_empty()) {
            let from = if file.is_some() { " (the file's contents)" } else { "" };
            let path = secret_key(&self.path(key), file);
            self.problems.push(Problem { path, message: format!("is empty{from}") });
        }
    }

    pub fn one_of(&mut self, key: &str, value: &Option<String>, allowed: &[&str]) {
        let path = self.path(key);
        one_of(&mut self.problems, &path, value, allowed);
    }

    pub fn url(&mut self, key: &str, value: Option<&str>, schemes: &[&str]) {
        let path = self.path(key);
        url(&mut self.problems, &path, value, schemes);
    }

    /// `media_hosts`: host names (`lookaside.fbsbx.com`) or `*.` and a name
    /// (`*.fbcdn.net`), no scheme, port or path.
    pub fn media_hosts(&mut self, key: &str, hosts: &Option<Vec<String>>) {
        for (i, h) in hosts.iter().flatten().enumerate() {
            let name = h.strip_prefix("*.").unwrap_or(h);
            let ok = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                self.push(
                    &format!("{key}[{i}]"),
                    format!("{h:?} is not a host name or *.domain (no scheme, port or path)"),
                );
            }
        }
    }

    /// `1..=10` SMS parts (or segments) per answer.
    pub fn max_parts(&mut self, key: &str, value: Option<usize>) {
        if value.is_some_and(|n| !(1..=10).contains(&n)) {
            self.push(key, "must be from 1 to 10");
        }
    }

    /// A rate that, when given, is at least 1.
    pub fn rate(&mut self, key: &str, value: Option<u32>) {
        if value == Some(0) {
            self.push(key, "must be at least 1");
        }
    }
}

/// The key a resolved secret came from: `path`, or `path_file` when it was read from a file.
fn secret_key(path: &str, file: &Option<PathBuf>) -> String {
    if file.is_some() { format!("{path}_file") } else { path.to_owned() }
}

/// A secret given inline or as `<path>_file` (read, trailing newline dropped); both is a
/// problem, and so is a file that cannot be read.
pub fn resolve_secret(
    path: &str,
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
) -> Result<Option<Secret>, Problem> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(Problem {
            path: format!("{path}_file"),
            message: format!("give {path} or {path}_file, not both"),
        }),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(f)) => read_secret_file(f)
            .map(Some)
            .map_err(|e| Problem { path: format!("{path}_file"), message: e }),
        (None, None) => Ok(None),
    }
}

fn read_secret_file(f: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(f)
        .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
        .map_err(|e| format!("{}: {e}", f.display()))
}

/// A value that, when given, must be one of `allowed`.
pub fn one_of(problems: &mut Vec<Problem>, path: &str, value: &Option<String>, allowed: &[&str]) {
    if let Some(v) = value
        && !allowed.contains(&v.as_str())
    {
        problems.push(Problem {
            path: path.into(),
            message: format!("{v:?} is not one of {}", allowed.join(", ")),
        });
    }
}

/// A value that, when given, must be a URL of one of `schemes`.
pub fn url(problems: &mut Vec<Problem>, path: &str, value: Option<&str>, schemes: &[&str]) {
    if let Some(v) = value {
        let ok = v.split_once("://").is_some_and(|(scheme, rest)| {
            schemes.contains(&scheme) && !rest.is_empty() && !rest.contains(char::is_whitespace)
        });
        if !ok {
            problems.push(Problem {
                path: path.into(),
                message: format!("must be a {} URL", schemes.join("/")),
            });
        }
    }
}

/// Resolves secrets and required keys while building settings: `settings()` collects its
/// problems here and fails with all of them.
#[derive(Debug)]
pub struct Resolve {
    check: Check,
}

impl Resolve {
    pub fn channel(key: &str) -> Resolve {
        Resolve { check: Check::channel(key) }
    }

    /// A secret, inline or from its file.
    pub fn secret(
        &mut self,
        key: &str,
        inline: &Option<Secret>,
        file: &Option<PathBuf>,
    ) -> Option<Secret> {
        self.check.secret(key, inline, file)
    }

    /// A value required when the channel is enabled (a problem and a default when absent).
    pub fn required<T: Default>(&mut self, key: &str, value: Option<T>) -> T {
        value.unwrap_or_else(|| {
            self.check.push(key, "is required when the channel is enabled");
            T::default()
        })
    }

    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.check.push(key, message);
    }

    /// `Ok(value)` when nothing went wrong.
    pub fn done<T>(self, value: T) -> Result<T, Vec<Problem>> {
        if self.check.problems.is_empty() { Ok(value) } else { Err(self.check.problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_printed_and_reads_numbers_as_written() {
        let s: Secret = serde_json::from_str("987654321").unwrap();
        assert_eq!(s.expose(), "987654321");
        let s: Secret = serde_json::from_str("true").unwrap();
        assert_eq!(s.expose(), "true");
        let e = serde_json::from_str::<Secret>("98765.4321").unwrap_err().to_string();
        assert!(!e.contains("98765"), "{e}");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn secrets_come_inline_or_from_a_file_not_both() {
        let dir = std::env::temp_dir().join(format!("aduan-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "123:abc\n").unwrap();
        let mut c = Check::channel("telegram");
        assert_eq!(
            c.secret("token", &None, &Some(f.clone())).as_ref().map(Secret::expose),
            Some("123:abc")
        );
        assert!(c.problems.is_empty());
        assert_eq!(c.secret("token", &Some(Secret::new("x")), &Some(f)), None);
        assert_eq!(c.problems[0].path, "channels.telegram.token_file");
        let _ = std::fs::remove_dir_all(dir);
    }
}
