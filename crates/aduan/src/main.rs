//! `aduan`: the daemon and its administrative commands. This file is wiring only: it reads
//! the configuration, builds the store, the web app and the workers, and supervises them.

mod config;
mod holidays;
mod opd;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aduan_connector::{Connector, ConnectorContext, Telemetry, outbound};
use aduan_store::{NewUser, Role, Scope, Store, StoreOptions};
use aduan_web::{AppState, WebConfig};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Source};

#[derive(Parser)]
#[command(name = "aduan", version, about = "Omnichannel complaint intake for local government")]
struct Cli {
    /// Configuration file (default: config/aduan.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: HTTP server, connectors, outbound sender.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and the OPD file; print every problem.
    CheckConfig,
    /// Manage web users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// The learned router.
    Routing {
        #[command(subcommand)]
        command: RoutingCommand,
    },
}

#[derive(Subcommand)]
enum RoutingCommand {
    /// Train the learned router on part of a labelled CSV and score it on the rest. The last
    /// line is `accuracy=0.xxx top3=0.xxx n=N labels=L`.
    Eval {
        /// A CSV file with a header row.
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
        /// The column with the complaint text.
        #[arg(long, value_name = "NAME")]
        text_column: String,
        /// The column with the label (an OPD code, a category, a sector…).
        #[arg(long, value_name = "NAME")]
        label_column: String,
        /// K-fold cross-validation: row i is tested in fold i mod K (default 5).
        #[arg(long, value_name = "K", conflicts_with = "train_fraction")]
        folds: Option<usize>,
        /// Train on this first fraction of the rows (file order), test on the rest.
        #[arg(long, value_name = "F")]
        train_fraction: Option<f64>,
    },
    /// Store past complaints with the OPD that handled them, for `routing train`. Labels
    /// are registry codes or OPD names (any case), or mapped by `--map`; with any label
    /// left unknown the labels are listed and nothing is stored. Rows already stored are
    /// skipped.
    Import {
        /// A CSV file with a header row.
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
        #[arg(long, value_name = "NAME")]
        text_column: String,
        #[arg(long, value_name = "NAME")]
        label_column: String,
        /// Label → OPD code: a TOML table (`"Infrastruktur" = "DPU"`) or a CSV with a
        /// header and the columns label, code.
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
    },
    /// Fit the learned router on the imported history and the operators' dispositions and
    /// store it in the database; every instance picks it up.
    Train,
    /// Show how a complaint would be routed and why.
    Explain {
        /// The complaint text.
        text: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from stdin (one line).
    Add {
        email: String,
        #[arg(long, value_parser = ["admin", "operator", "official"])]
        role: String,
        /// The OPD an official belongs to.
        #[arg(long)]
        opd: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create a key; its token is the last line printed (shown once).
    Create {
        /// The client the key is for. Keys of one name share idempotency keys and app
        /// user ids, so a rotated key continues where the old one left off.
        name: String,
        #[arg(long, default_value = "intake", value_parser = ["intake", "read", "admin"])]
        scope: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, source) = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Command::CheckConfig = cli.command {
        return check_config(&config, &source);
    }
    if let Command::Routing {
        command: RoutingCommand::Eval { csv, text_column, label_column, folds, train_fraction },
    } = &cli.command
    {
        return match routing_eval(&config, csv, text_column, label_column, *folds, *train_fraction)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let problems = config.validate();
    if !problems.is_empty() {
        for p in problems {
            eprintln!("{p}");
        }
        eprintln!("the configuration has problems; `aduan check-config` lists them");
        return ExitCode::FAILURE;
    }
    init_logging(&config);
    if let Some(offset) = aduan_core::time::parse_timezone(&config.sla.timezone) {
        aduan_core::time::set_display_offset(offset);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(config, source).await,
            Command::Migrate => migrate(&config).await,
            Command::User { command: UserCommand::Add { email, role, opd, name } } => {
                user_add(&config, email, &role, opd, name).await
            }
            Command::Apikey { command: ApikeyCommand::Create { name, scope } } => {
                apikey_create(&config, name, &scope).await
            }
            Command::Routing {
                command: RoutingCommand::Import { csv, text_column, label_column, map },
            } => routing_import(&config, &csv, &text_column, &label_column, map.as_deref()).await,
            Command::Routing { command: RoutingCommand::Train } => routing_train(&config).await,
            Command::Routing { command: RoutingCommand::Explain { text } } => {
                routing_explain(&config, &text).await
            }
            Command::CheckConfig | Command::Routing { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so that stdout carries only what commands print for people and
/// scripts (`apikey create` prints its token there).
fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn check_config(config: &Config, source: &Source) -> ExitCode {
    let mut problems = config.validate();
    let default_opd = config::Routing::default().opd_file;
    match opd::load(
        &config.routing.opd_file,
        config.routing.opd_file != default_opd,
        &config.routing.kabupaten,
    ) {
        Ok(Some(registry)) => {
            println!("OPD registry {}: {}", config.routing.opd_file.display(), registry.summary())
        }
        Ok(None) => eprintln!(
            "warning: routing.opd_file: {} not found; any OPD code is accepted",
            config.routing.opd_file.display()
        ),
        Err(p) => problems.extend(p),
    }
    match config.sla.calendar_path() {
        Some(path) => match holidays::load(&path) {
            Ok(days) => println!("holiday calendar {}: {} days off", path.display(), days.len()),
            Err(p) => problems.extend(p),
        },
        None => eprintln!(
            "warning: sla.calendar_file: none set and {} not found; working days count only weekends",
            config::DEFAULT_CALENDAR_FILE
        ),
    }
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        let from = match source {
            Source::Defaults => "built-in defaults".to_owned(),
            Source::File(p) => p.display().to_string(),
        };
        println!("configuration OK ({from})");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Working days at the office's offset, minus the holidays of the calendar file.
fn calendar(config: &Config) -> anyhow::Result<aduan_core::Calendar> {
    let offset = aduan_core::time::parse_timezone(&config.sla.timezone)
        .unwrap_or_else(aduan_core::time::wib);
    let days = match config.sla.calendar_path() {
        Some(path) => holidays::load(&path).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the holiday calendar has problems:\n{}", lines.join("\n"))
        })?,
        None => Default::default(),
    };
    Ok(aduan_core::Calendar::new(offset, days))
}

fn sla_policy(config: &Config) -> anyhow::Result<aduan_core::SlaPolicy> {
    Ok(aduan_core::SlaPolicy {
        first_response: chrono::Duration::hours(config.sla.first_response_hours),
        resolution: config
            .sla
            .resolution
            .parse()
            .map_err(|e| anyhow::anyhow!("sla.resolution: {e}"))?,
        calendar: calendar(config)?,
        warn_fraction: config.sla.warn_fraction,
        confirm_working_days: config.sla.confirm_working_days,
    })
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let opd_names = match read_registry(config) {
        Ok(Some(r)) => r.opd.iter().map(|o| (o.code.clone(), o.name.clone())).collect(),
        _ => Default::default(),
    };
    let opts = StoreOptions {
        threading: config.threading_policy(),
        sla: sla_policy(config)?,
        opd_names,
        max_connections: config.database.max_connections,
        max_batch: config.database.max_batch,
        ack_template: config.intake.acknowledge.then(|| config.intake.ack_text.clone()),
        auto_limits: aduan_store::AutoLimits {
            per_recipient_per_day: config.intake.auto_messages_per_recipient_per_day,
            per_hour: config.intake.auto_messages_per_hour,
        },
        attachment_bytes_per_hour: Some(config.server.upload_bytes_per_hour),
        public_url: Some(config.server.public_url.clone()),
        incidents: config.incidents.policy(),
    };
    let url = config.database.url.expose();
    Store::open(url, opts)
        .await
        .with_context(|| format!("cannot open the database {}", aduan_store::redact_url(url)))
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    store.migrate().await.context("migration failed")?;
    store.close().await;
    println!("migrations applied ({})", store.backend_name());
    Ok(())
}

fn read_registry(config: &Config) -> anyhow::Result<Option<opd::OpdFile>> {
    let default_opd = config::Routing::default().opd_file;
    opd::load(
        &config.routing.opd_file,
        config.routing.opd_file != default_opd,
        &config.routing.kabupaten,
    )
    .map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the OPD file has problems:\n{}", lines.join("\n"))
    })
}

async fn user_add(
    config: &Config,
    email: String,
    role: &str,
    opd: Option<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    let email =
        aduan_core::Identity::email(&email).map_err(|e| anyhow::anyhow!("{email}: {e}"))?.value;
    let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    match (role, &opd) {
        (Role::Official, None) => bail!("an official needs --opd CODE"),
        (Role::Admin | Role::Operator, Some(_)) => bail!("--opd is only for officials"),
        _ => {}
    }
    if let (Some(code), Some(registry)) = (&opd, read_registry(config)?)
        && !registry.codes().contains(code)
    {
        bail!("{code} is not an OPD of {}", config.routing.opd_file.display());
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.chars().count() < 10 {
        bail!("the password must have at least 10 characters");
    }
    let password_hash = hash_password(password)?;
    let store = open_store(config).await?;
    store.migrate().await?;
    let id =
        store.add_user(NewUser { email: email.clone(), name, role, opd, password_hash }).await?;
    store.close().await;
    println!("user {email} ({}) created with id {id}", role.as_str());
    Ok(())
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

async fn apikey_create(config: &Config, name: String, scope: &str) -> anyhow::Result<()> {
    let name = name.trim().to_owned();
    if let Err(problem) = aduan_web::auth::valid_key_name(&name) {
        bail!("{problem}");
    }
    let scope: Scope = scope.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let token = aduan_web::auth::generate_token();
    let store = open_store(config).await?;
    store.migrate().await?;
    let id = store.add_api_key(name.clone(), scope, aduan_web::auth::hash_token(&token)).await?;
    store.close().await;
    println!(
        "API key {id} for {name:?} with scope {}. Keep the token now; it is not shown again:",
        scope.as_str()
    );
    println!("{token}");
    Ok(())
}

/// Registers for SIGTERM and SIGINT at once, and returns a future that resolves when one
/// arrives. The registration must happen before the daemon answers anything: a SIGTERM
/// arriving before it (a fast stop right after start, a rolling update) would kill the
/// process with its default action, skipping the graceful shutdown.
fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = int => tracing::info!("SIGINT received; shutting down."),
                () = term => tracing::info!("SIGTERM received; shutting down."),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received; shutting down.");
        }
    }
}

async fn serve(config: Config, source: Source) -> anyhow::Result<()> {
    match &source {
        Source::Defaults => tracing::info!("No config file; using built-in defaults."),
        Source::File(path) => tracing::info!(file = %path.display(), "Configuration loaded."),
    }
    let store = open_store(&config).await?;
    store.migrate().await.context("migration failed")?;
    let registry = read_registry(&config)?;
    match &registry {
        Some(r) => tracing::info!(opds = r.opd.len(), "OPD registry loaded."),
        None => {
            tracing::warn!(file = %config.routing.opd_file.display(), "No OPD registry; any OPD code is accepted.")
        }
    }

    ensure_dir(&config.storage.dir)?;
    // One attachment store for the web layer and every connector, keeping the free-space
    // floor.
    let floor = aduan_connector::StorageFloor {
        min_free_bytes: config.storage.min_free_bytes,
        max_percent: config.storage.min_free_max_percent,
    };
    let blobs = aduan_connector::BlobStore::new(&config.storage.dir, floor);

    let telemetry = Arc::new(Telemetry::new());
    let connectors = build_connectors(&config)?;
    tracing::info!(channels = ?config.enabled_channels(), "Channel connectors built.");
    let webhooks = connectors.iter().flat_map(|c| c.webhooks()).collect();
    let open311 = registry.as_ref().map(opd::open311_services).unwrap_or_default();
    let web = WebConfig {
        max_json_bytes: config.server.max_json_bytes,
        attachments_dir: config.storage.dir.clone(),
        public_url: config.server.public_url.clone(),
        opds: registry.as_ref().map(opd::OpdFile::codes),
        opd_names: registry
            .as_ref()
            .map(|r| r.opd.iter().map(|o| (o.code.clone(), o.name.clone())).collect())
            .unwrap_or_default(),
        max_multipart_bytes: config.server.max_multipart_bytes,
        login_attempts_per_minute: config.server.login_attempts_per_minute,
        public_requests_per_minute: config.server.public_requests_per_minute,
        session_hours: config.server.session_hours,
        sms_country_prefix: config.intake.sms_country_prefix.clone(),
        metrics_token: config.server.metrics_token.as_ref().map(|t| t.expose().trim().to_owned()),
        upload_bytes_per_hour: config.server.upload_bytes_per_hour,
        storage_floor: floor,
        // The registry's categories are the Open311 services (grouped by sector); without
        // categories, its OPDs.
        services: open311.0,
        services_are_opds: open311.1,
        action_key: Some(action_key(&config)?),
    };
    let state = AppState::with_blobs(store.clone(), telemetry.clone(), web, blobs.clone());
    let app = aduan_web::app(state, webhooks);

    // Before the daemon can answer anything (see `signal`).
    let signalled = signal();
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(listen = %config.server.listen, backend = store.backend_name(), "Listening.");

    let shutdown = CancellationToken::new();
    let cx = ConnectorContext {
        store: store.clone(),
        telemetry: telemetry.clone(),
        blobs,
        shutdown: shutdown.clone(),
    };
    let mut workers = tokio::task::JoinSet::new();
    for c in &connectors {
        workers.spawn(aduan_connector::supervise(c.clone(), cx.clone()));
    }
    let outbound_cfg = outbound::OutboundConfig {
        poll: Duration::from_millis(config.outbound.poll_ms),
        max_attempts: config.outbound.max_attempts,
        backoff: Duration::from_secs(config.outbound.backoff_secs),
        fallback_order: config.outbound.fallback_order.clone(),
        ..outbound::OutboundConfig::default()
    };
    workers.spawn(outbound::run(cx, connectors.clone(), outbound_cfg));
    if config.routing.enabled {
        let routing = routing_worker(&config, store.clone(), registry.clone().unwrap_or_default())?;
        workers.spawn(Arc::new(routing).run(shutdown.clone()));
    } else {
        tracing::warn!(
            "Routing worker disabled ([routing] enabled = false): tickets wait in triage."
        );
    }

    if config.inbox.round_robin {
        workers.spawn(round_robin(
            store.clone(),
            Duration::from_secs(config.inbox.round_robin_interval_secs),
            shutdown.clone(),
        ));
    }

    let stop = shutdown.clone();
    tokio::spawn(async move {
        signalled.await;
        stop.cancel();
    });
    let limits = aduan_web::ServeLimits {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(config.server.body_read_timeout_secs),
        max_connections: config.server.max_connections,
        max_inflight_body_bytes: config.server.max_inflight_body_bytes,
    };
    let server =
        aduan_web::serve_counted(listener, app, limits, Some(telemetry.clone()), shutdown.clone());
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let mut server = tokio::spawn(server);
    // In-flight requests finish (their writes commit) before the store closes.
    let served = tokio::select! {
        r = &mut server => {
            shutdown.cancel();
            Ok(r)
        }
        () = shutdown.cancelled() => tokio::time::timeout(grace, server).await,
    };
    let mut failed = None;
    match served {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => failed = Some(anyhow::anyhow!("HTTP server failed: {e}")),
        Ok(Err(e)) => failed = Some(anyhow::anyhow!("HTTP server task failed: {e}")),
        Err(_) => tracing::warn!(
            grace_secs = grace.as_secs(),
            "Requests still running after the grace period; stopping anyway."
        ),
    }
    if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("Workers still running after the grace period; stopping anyway.");
    }
    store.close().await;
    tracing::info!("Stopped.");
    failed.map_or(Ok(()), Err)
}

/// One connector per enabled channel family, from the sections the channel crates own.
fn build_connectors(config: &Config) -> anyhow::Result<Vec<Arc<dyn Connector>>> {
    use aduan_connector::ChannelConfig;
    use aduan_connector::config::problems_text;
    let fail = |p: Vec<aduan_connector::Problem>| anyhow::anyhow!("{}", problems_text(&p));
    let cx = aduan_connector::BuildContext {
        attachments_dir: config.storage.dir.clone(),
        public_url: config.server.public_url.clone(),
    };
    let c = &config.channels;
    let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
    // Messenger, Instagram and WhatsApp (/hooks/meta); X (/hooks/x).
    if c.meta.enabled {
        let meta = c.meta.settings(&cx).map_err(fail)?;
        connectors.push(Arc::new(aduan_social::MetaConnector::new(meta)));
    }
    if c.x.enabled {
        connectors.push(Arc::new(aduan_social::XConnector::new(c.x.settings(&cx).map_err(fail)?)));
    }
    // Telegram (/hooks/telegram in webhook mode, long polling otherwise).
    if c.telegram.enabled {
        let tg = c.telegram.settings(&cx).map_err(fail)?;
        connectors.push(Arc::new(
            aduan_telegram::TelegramConnector::new(tg).context("channels.telegram")?,
        ));
    }
    // Email (IMAP intake, SMTP answers; officials reply from their registry addresses).
    if c.email.enabled {
        let mut email = c.email.settings(&cx).map_err(fail)?;
        // Officials answer tickets by replying from the addresses the OPD registry lists.
        email.officials = read_registry(config)?
            .map(|r| {
                aduan_email::Officials::new(
                    r.opd.iter().flat_map(|o| o.emails.iter().map(|e| (o.code.clone(), e))),
                )
            })
            .unwrap_or_default();
        connectors.push(Arc::new(aduan_email::EmailConnector::new(email)?));
    }
    // SMS: Kannel (/hooks/kannel), Twilio (/hooks/twilio), SMS Gateway for Android
    // (/hooks/android-sms); answers go back through the gateway the resident used.
    if let Some(sms) =
        aduan_sms::SmsConfig::from_sections(&c.kannel, &c.twilio, &c.android_sms, &cx)
            .map_err(fail)?
    {
        connectors.push(Arc::new(aduan_sms::SmsConnector::new(sms)));
    }
    Ok(connectors)
}

fn router(config: &Config, registry: opd::OpdFile) -> aduan_routing::Router {
    aduan_routing::Router::new(
        registry,
        aduan_routing::Gazetteer::for_kabupaten(&config.routing.kabupaten),
        aduan_routing::RouterConfig {
            threshold: config.routing.threshold,
            learned_weight: config.routing.learned_weight,
            lone_keyword_routes: config.routing.lone_keyword_routes,
        },
    )
}

/// The key of the officials' action links: `[server] action_link_key`, else derived from
/// the email reply-token key (configured, or generated once in the storage directory).
fn action_key(config: &Config) -> anyhow::Result<aduan_core::action_link::ActionKey> {
    use aduan_core::action_link::ActionKey;
    if let Some(k) = &config.server.action_link_key {
        return ActionKey::new(k.expose().trim().as_bytes())
            .map_err(|e| anyhow::anyhow!("server.action_link_key: {e}"));
    }
    let reply = match &config.channels.email.reply_token_secret {
        Some(s) => aduan_email::token::ReplyKey::new(s.expose().as_bytes())?,
        None => aduan_email::token::ReplyKey::load_or_create(&config.storage.dir)?,
    };
    reply.action_key().map_err(|e| anyhow::anyhow!("action link key: {e}"))
}

/// The routing worker and deadline watcher, on the system clock.
fn routing_worker(
    config: &Config,
    store: Store,
    registry: opd::OpdFile,
) -> anyhow::Result<aduan_routing::worker::Routing> {
    use aduan_routing::worker::{Routing, SystemClock, WorkerConfig};
    let r = &config.routing;
    let sla = sla_policy(config)?;
    let cfg = WorkerConfig {
        poll: Duration::from_millis(r.poll_ms),
        watch_every: Duration::from_secs(r.watch_secs),
        retrain_every: Duration::from_secs(r.retrain_secs),
        min_examples: r.min_examples,
        identity: aduan_core::IdentityPolicy {
            enabled: r.ask_identity,
            require_name: r.require_name,
            require_contact: r.require_contact,
            require_address: r.require_address,
        },
        admins: r.admin_emails.iter().filter_map(|e| aduan_core::Identity::email(e).ok()).collect(),
        public_url: config.server.public_url.clone(),
        calendar: sla.calendar,
        default_resolution: sla.resolution,
        warn_fraction: sla.warn_fraction,
        links: Some(aduan_routing::links::LinkSigner {
            key: action_key(config)?,
            public_url: config.server.public_url.trim_end_matches('/').to_owned(),
            valid_for: chrono::Duration::days(i64::from(config.sla.action_link_days)),
        }),
        digest_hour: config.sla.digest_hour,
        ..WorkerConfig::default()
    };
    Ok(Routing::new(store, router(config, registry), Arc::new(SystemClock), cfg))
}

/// `aduan routing eval`: prints per-fold accuracy, the confusion matrix and the summary line.
fn routing_eval(
    config: &Config,
    csv: &Path,
    text_column: &str,
    label_column: &str,
    folds: Option<usize>,
    train_fraction: Option<f64>,
) -> anyhow::Result<()> {
    use aduan_routing::eval::{Split, evaluate_with_model, read_csv};
    let split = match (folds, train_fraction) {
        (_, Some(f)) => Split::TrainFraction(f),
        (k, None) => Split::Folds(k.unwrap_or(5)),
    };
    let file =
        std::fs::File::open(csv).with_context(|| format!("cannot open {}", csv.display()))?;
    let rows = read_csv(std::io::BufReader::new(file), text_column, label_column)?;
    // The same features as in production: the registry's rules and the gazetteer.
    let registry = read_registry(config)?.unwrap_or_default();
    let router = router(config, registry);
    let started = std::time::Instant::now();
    let (report, model) =
        evaluate_with_model(&router, &rows, split, &aduan_routing::TrainConfig::default())?;
    eprintln!("evaluated {} rows in {:.2} s", rows.len(), started.elapsed().as_secs_f64());
    // What routing one ticket costs in production: normalisation, places, rules and the
    // learned router (the last fold's), per ticket, over every row's text.
    let full = router.with_model(Some(model));
    let started = std::time::Instant::now();
    for (text, _) in &rows {
        std::hint::black_box(full.route(text));
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
    eprintln!("routing one ticket: {per:.0} µs on average over {} texts", rows.len());
    println!("{}", report.render());
    Ok(())
}

/// `aduan routing import`: maps the labels, refuses unknown ones, stores the rest.
async fn routing_import(
    config: &Config,
    csv: &Path,
    text_column: &str,
    label_column: &str,
    map: Option<&Path>,
) -> anyhow::Result<()> {
    use aduan_routing::history::{map_labels, parse_map};
    let file =
        std::fs::File::open(csv).with_context(|| format!("cannot open {}", csv.display()))?;
    let rows =
        aduan_routing::eval::read_csv(std::io::BufReader::new(file), text_column, label_column)?;
    let registry = read_registry(config)?.unwrap_or_default();
    let map = match map {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse_map(&path.display().to_string(), &text, &registry)?
        }
        None => Default::default(),
    };
    let mapped = match map_labels(&rows, &registry, &map) {
        Ok(m) => m,
        Err(unknown) => {
            eprintln!("labels that are no OPD code or name of the registry (rows):");
            for (label, n) in &unknown.0 {
                eprintln!("  {label}\t{n}");
            }
            bail!(
                "{} unknown label(s); map them to OPD codes with --map FILE (nothing was imported)",
                unknown.0.len()
            );
        }
    };
    let store = open_store(config).await?;
    store.migrate().await.context("migration failed")?;
    let total = mapped.len();
    let source = csv.file_name().map(|n| n.to_string_lossy().into_owned());
    let added = store.routing_history_import(mapped, source).await?;
    store.close().await;
    println!(
        "imported {added} new rows ({} already stored) from {}",
        total as u64 - added,
        csv.display()
    );
    Ok(())
}

fn routing_worker_config(config: &Config) -> aduan_routing::worker::WorkerConfig {
    aduan_routing::worker::WorkerConfig {
        min_examples: config.routing.min_examples,
        ..aduan_routing::worker::WorkerConfig::default()
    }
}

/// `aduan routing train`: fits on history + dispositions and stores the model.
async fn routing_train(config: &Config) -> anyhow::Result<()> {
    let registry = read_registry(config)?.unwrap_or_default();
    let router = std::sync::Arc::new(router(config, registry));
    let store = open_store(config).await?;
    store.migrate().await.context("migration failed")?;
    let started = std::time::Instant::now();
    let cfg = routing_worker_config(config);
    let trained =
        aduan_routing::worker::train_and_store(&store, &router, &cfg, chrono::Utc::now()).await?;
    store.close().await;
    let Some((id, model)) = trained else {
        bail!(
            "too little to learn from: import history (`aduan routing import`) or let operators \
             dispose at least {} tickets",
            cfg.min_examples
        );
    };
    println!(
        "model {id} stored: examples={} labels={} temperature={:.2} in {:.1} s",
        model.examples(),
        model.labels().len(),
        model.temperature(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `aduan routing explain "TEXT"`: the decision with the newest stored model, and why.
async fn routing_explain(config: &Config, text: &str) -> anyhow::Result<()> {
    let registry = read_registry(config)?.unwrap_or_default();
    let mut router = router(config, registry);
    let store = open_store(config).await?;
    store.migrate().await.context("migration failed")?;
    let stored = store.routing_model_latest().await?;
    store.close().await;
    if let Some(stored) = stored {
        match aduan_routing::Model::from_bytes(&stored.bytes) {
            Some(model) => router = router.with_model(Some(model)),
            None => {
                eprintln!("warning: stored model {} is not readable by this version", stored.id)
            }
        }
    }
    print!("{}", router.explain(text).render());
    Ok(())
}

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// `[inbox] round_robin`: hands new triage tickets to the operators on duty every
/// `every` (`Store::round_robin`; safe with several instances on one database).
async fn round_robin(store: Store, every: Duration, shutdown: CancellationToken) {
    loop {
        match store.round_robin(50).await {
            Ok(handed) if !handed.is_empty() => {
                tracing::info!(
                    tickets = handed.len(),
                    "Triage tickets handed to operators on duty."
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "Round-robin of triage tickets failed."),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
