//! The thin async shell: the routing worker and the deadline watcher.
//!
//! - **Routing** ([`Routing::route_once`]): claims tickets the router has to look at (new
//!   ones, and ones whose resident answered an identity request) with a lease, decides
//!   ([`decide`], pure) and records the decision in one transaction. Several daemons may run
//!   it against one database: PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, SQLite has
//!   one writer, and an expired lease hands a ticket to another worker.
//! - **Watching** ([`Routing::watch_once`]): sends each disposed ticket to its OPD's
//!   officials, and warnings and escalations as the clocks run (decided by
//!   [`aduan_core::alert_due`]). Every notification is queued through
//!   [`aduan_store::Store::notify_once`], keyed per ticket, so it goes out once however
//!   many watchers run.
//! - **Learning** ([`Routing::retrain`]): the learned router is retrained on a schedule
//!   from the imported history and the operators' dispositions (newer ones weighted up,
//!   [`crate::history`]) and stored in the database; every instance loads the newest stored
//!   model ([`Routing::refresh_model`], checked every `watch_every`), and an instance whose
//!   stored model is younger than `retrain_every` uses it instead of training its own.
//!
//! Time comes from a [`Clock`], so tests can move it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aduan_core::{
    Alert, Budget, Calendar, ClockKind, ClockState, Identity, IdentityPolicy, Measure, Purpose,
    Status, alert_due, identity_request_text, parse_identity_reply,
};
use aduan_store::{
    AlertSchedule, ReporterUpdate, RouteAction, RouteJob, RouteResult, Store, WatchedTicket,
};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::RoutingError;
use crate::model::{Model, TrainConfig};
use crate::notify::{Notice, disposition_text, escalation_text, undelivered_text, warning_text};
use crate::router::Router;

/// Where the worker gets the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and move.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut t) = self.0.lock() {
            *t = at;
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_else(|e| *e.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Pause between routing rounds when idle.
    pub poll: Duration,
    /// Pause between deadline rounds.
    pub watch_every: Duration,
    /// Tickets claimed per round.
    pub batch: i64,
    /// How long a claim holds.
    pub lease: chrono::Duration,
    /// Retrain the learned router this often (and at start).
    pub retrain_every: Duration,
    /// Dispositions needed before the learned router is trained from dispositions alone.
    /// With imported history, [`MIN_WITH_HISTORY`] examples in all are enough.
    pub min_examples: usize,
    /// Most recent dispositions learned from.
    pub max_examples: i64,
    pub identity: IdentityPolicy,
    /// Receive warnings for unassigned tickets and every escalation.
    pub admins: Vec<Identity>,
    /// The web inbox, for links in mails (no trailing slash).
    pub public_url: String,
    pub calendar: Calendar,
    /// Deadlines of tickets that set none.
    pub default_resolution: Budget,
    pub warn_fraction: f64,
    pub train: TrainConfig,
    /// A dead notification to officials is put back for another attempt this many times
    /// before the admins are alerted ([`Routing::revive_once`]).
    pub notify_revivals: i64,
    /// How long a notification stays dead before it is revived (or escalated).
    pub notify_revive_after: chrono::Duration,
    /// Signs the officials' one-click action links; `None`: mails carry no links.
    pub links: Option<crate::links::LinkSigner>,
    /// The local hour of the daily digest to each OPD head (`[sla] digest_hour`); `None`:
    /// no digest.
    pub digest_hour: Option<u32>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: Duration::from_secs(2),
            watch_every: Duration::from_secs(60),
            batch: 20,
            lease: chrono::Duration::minutes(2),
            retrain_every: Duration::from_secs(3600),
            min_examples: 200,
            max_examples: 20_000,
            identity: IdentityPolicy::default(),
            admins: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            calendar: Calendar::default(),
            default_resolution: Budget::WorkingDays(5),
            warn_fraction: 0.75,
            train: TrainConfig::default(),
            notify_revivals: 3,
            notify_revive_after: chrono::Duration::hours(1),
            links: None,
            digest_hour: None,
        }
    }
}

/// The routing decision for a claimed ticket: pure, from the ticket, the router and the
/// identity policy.
pub fn decide(job: &RouteJob, router: &Router, policy: &IdentityPolicy) -> RouteResult {
    let mut name = job.reporter.name.clone();
    let mut address = job.reporter.address.clone();
    let mut update = None;
    if job.status == Status::AwaitingIdentity
        && let Some(answer) = job.texts.last()
    {
        let mut reply = parse_identity_reply(answer);
        if reply.address.is_none() && policy.require_address {
            reply.address = router.place(answer).label();
        }
        if !reply.is_empty() {
            name = reply.name.clone().or(name);
            address = reply.address.clone().or(address);
            update = Some(ReporterUpdate {
                name: reply.name,
                address: reply.address,
                confidential: reply.confidential,
            });
        }
    }
    let missing = policy.missing(name.as_deref(), job.reachable, address.as_deref());
    // A resident we can't write to can't be asked; their ticket is routed as it is.
    if !missing.is_empty() && job.reachable {
        let mut r = if job.identity_requested {
            RouteResult::new(RouteAction::Wait)
        } else {
            let fields: Vec<&str> = missing.iter().map(|f| f.as_str()).collect();
            RouteResult::new(RouteAction::RequestIdentity {
                text: identity_request_text(job.code, &missing),
                reason: format!("menunggu identitas pelapor ({})", fields.join(", ")),
            })
        };
        r.reporter = update;
        return r;
    }
    let text = job.texts.join("\n");
    let d = router.route(&text);
    let (first_response, resolution) = router.registry().budgets(
        d.opd.as_deref().or(d.suggestions.first().map(|s| s.opd.as_str())),
        d.category.as_deref(),
    );
    let note = d.note();
    let action = match &d.opd {
        Some(opd) => RouteAction::Assign { opd: opd.clone(), note },
        None => RouteAction::Triage { note },
    };
    RouteResult {
        action,
        category: d.category.clone(),
        place: d.place.desa.clone(),
        kecamatan: d.place.kecamatan.clone(),
        suggestions: serde_json::to_value(&d.suggestions).ok(),
        reporter: update,
        first_response,
        resolution,
    }
}

/// The alerts a ticket's clocks call for now, with each clock's deadline, skipping the
/// ones already sent.
pub fn due_alerts(
    t: &WatchedTicket,
    cal: &Calendar,
    default_resolution: Budget,
    warn_fraction: f64,
    now: DateTime<Utc>,
) -> Vec<(Alert, ClockKind, DateTime<Utc>)> {
    let mut out = Vec::new();
    for c in clocks_of(t, default_resolution) {
        let Some(alert) = alert_due(cal, &c, now, warn_fraction) else { continue };
        let escalated = t.sent.contains(&Alert::Escalation.key(c.kind));
        if t.sent.contains(&alert.key(c.kind)) || escalated {
            continue;
        }
        out.push((alert, c.kind, c.due));
    }
    out
}

/// The two clocks of a watched ticket.
fn clocks_of(t: &WatchedTicket, default_resolution: Budget) -> Vec<ClockState> {
    let s = &t.summary;
    let mut clocks = vec![ClockState {
        kind: ClockKind::FirstResponse,
        start: s.created_at,
        due: s.first_response_due_at,
        measure: t.first_response_budget.map_or(Measure::Wall, Budget::measure),
        stopped: s.first_responded_at.is_some() || !s.status.is_open(),
        paused: s.paused,
    }];
    if let Some(due) = s.resolution_due_at {
        clocks.push(ClockState {
            kind: ClockKind::Resolution,
            start: s.created_at,
            due,
            measure: t.resolution_budget.unwrap_or(default_resolution).measure(),
            stopped: !s.status.is_open(),
            paused: s.paused,
        });
    }
    clocks
}

/// When the watcher must next look at `t`, once the notifications keyed `sent` are out:
/// for each running clock, its warning point while it was not warned, else its deadline
/// while it was not escalated; the earliest of the two clocks. `None`: no clock can alert
/// (stopped, paused or escalated) until the ticket changes, which asks for a look again
/// (migration 0022). A point already past stays due, so a failed round is retried.
pub fn next_alert_at(
    t: &WatchedTicket,
    sent: &[String],
    cal: &Calendar,
    default_resolution: Budget,
    warn_fraction: f64,
) -> Option<DateTime<Utc>> {
    clocks_of(t, default_resolution)
        .into_iter()
        .filter(|c| !c.stopped && !c.paused)
        .filter(|c| !sent.contains(&Alert::Escalation.key(c.kind)))
        .map(|c| {
            if sent.contains(&Alert::Warning.key(c.kind)) {
                c.due
            } else {
                cal.fraction_point(c.measure, c.start, c.due, warn_fraction).min(c.due)
            }
        })
        .min()
}

/// Tickets one deadline-scan batch reads.
const WATCH_BATCH: i64 = 1000;
/// Most batches one watching round reads.
const WATCH_BATCHES: usize = 20;

/// The routing worker and the deadline watcher of one daemon.
pub struct Routing {
    store: Store,
    router: RwLock<Arc<Router>>,
    clock: Arc<dyn Clock>,
    cfg: WorkerConfig,
    /// Digests this worker sent or found claimed, `(opd, local day)`.
    digests_done: Mutex<std::collections::BTreeSet<(String, chrono::NaiveDate)>>,
    /// The stored model in use: its id and when it was trained.
    model_loaded: Mutex<Option<(i64, DateTime<Utc>)>>,
}

fn emails(list: &[String]) -> Vec<Identity> {
    list.iter().filter_map(|e| Identity::email(e).ok()).collect()
}

impl Routing {
    pub fn new(store: Store, router: Router, clock: Arc<dyn Clock>, cfg: WorkerConfig) -> Routing {
        Routing {
            store,
            router: RwLock::new(Arc::new(router)),
            clock,
            cfg,
            digests_done: Mutex::new(std::collections::BTreeSet::new()),
            model_loaded: Mutex::new(None),
        }
    }

    pub fn router(&self) -> Arc<Router> {
        match self.router.read() {
            Ok(r) => r.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    /// One routing round; returns how many tickets were decided.
    pub async fn route_once(&self) -> Result<usize, RoutingError> {
        let now = self.clock.now();
        let jobs = self.store.route_claim(self.cfg.batch, self.cfg.lease, now).await?;
        let router = self.router();
        let mut done = 0;
        for job in jobs {
            let result = decide(&job, &router, &self.cfg.identity);
            let action = match &result.action {
                RouteAction::Assign { opd, .. } => format!("assigned:{opd}"),
                RouteAction::Triage { .. } => "triage".to_owned(),
                RouteAction::RequestIdentity { .. } => "identity_requested".to_owned(),
                RouteAction::Wait => "awaiting_identity".to_owned(),
            };
            if self.store.route_done(job.code, result, self.clock.now()).await? {
                done += 1;
                tracing::info!(ticket = %job.code, action, "Ticket routed.");
            }
        }
        Ok(done)
    }

    fn notice<'a>(&self, t: &'a WatchedTicket, router: &'a Router) -> Notice<'a> {
        let s = &t.summary;
        let reg = router.registry();
        Notice {
            code: s.code,
            opd_name: s.opd.as_deref().map(|o| reg.opd(o).map_or(o, |x| x.name.as_str())),
            category_name: s
                .category
                .as_deref()
                .map(|c| reg.category(c).map_or(c, |x| x.name.as_str())),
            place: match (&s.place, &s.kecamatan) {
                (Some(d), Some(k)) => Some(format!("{d}, Kec. {k}")),
                (Some(d), None) => Some(d.clone()),
                (None, Some(k)) => Some(format!("Kec. {k}")),
                (None, None) => None,
            },
            created_at: s.created_at,
            first_response_due: s.first_responded_at.is_none().then_some(s.first_response_due_at),
            resolution_due: s.resolution_due_at,
            texts: crate::notify::complaint_texts(
                &t.texts,
                t.reporter.name.as_deref(),
                t.reporter.address.as_deref(),
                t.reporter.confidential,
            ),
            reporter_name: t.reporter.name.as_deref(),
            confidential: t.reporter.confidential,
            link: format!("{}/tickets/{}", self.cfg.public_url, s.code),
        }
    }

    /// Sends every disposed ticket whose officials were not told yet to its OPD (once per
    /// ticket and OPD). Returns how many were sent.
    pub async fn dispose_once(&self) -> Result<usize, RoutingError> {
        let router = self.router();
        let reg = router.registry();
        let mut sent = 0;
        let now = self.clock.now();
        for t in self.store.undisposed(100, now).await? {
            let Some(opd_code) = t.summary.opd.clone() else { continue };
            let recipients = match reg.opd(&opd_code) {
                Some(o) => emails(&o.emails),
                None => self.cfg.admins.clone(),
            };
            let text = disposition_text(&self.notice(&t, &router));
            let key = format!("disposition:{opd_code}");
            let mails = self.personal(&text, recipients, t.summary.code, reg.opd(&opd_code), now);
            if self
                .store
                .notify_disposition(t.summary.code, key, mails, t.last_message_id, now)
                .await?
            {
                sent += 1;
                tracing::info!(ticket = %t.summary.code, opd = opd_code, "Ticket sent to its OPD.");
            }
        }
        Ok(sent)
    }

    /// Relays what residents wrote on tickets already with an OPD to its officials (one
    /// mail per ticket and round, holding every new message). Returns how many were sent.
    pub async fn follow_up_once(&self) -> Result<usize, RoutingError> {
        let router = self.router();
        let reg = router.registry();
        let mut sent = 0;
        let now = self.clock.now();
        for f in self.store.follow_ups(100, now).await? {
            let code = f.ticket.summary.code;
            let r = &f.ticket.reporter;
            // As officials may read them: a confidential reporter's name and address masked
            // (contacts are masked when the mail is written). Not filtered as identity
            // answers are in `complaint_texts`: on a ticket with an OPD the resident answers
            // the officials ("RT 03 RW 02, depan masjid" is what they asked for).
            let who = aduan_core::privacy::Reporter {
                name: r.name.as_deref(),
                address: r.address.as_deref(),
                confidential: r.confidential,
            };
            let new: Vec<String> =
                f.texts.iter().map(|t| aduan_core::privacy::for_officials(t, &who)).collect();
            let mails = match (&f.ticket.summary.opd, new.is_empty()) {
                (Some(opd_code), false) => {
                    let recipients = match reg.opd(opd_code) {
                        Some(o) => emails(&o.emails),
                        None => self.cfg.admins.clone(),
                    };
                    let mut t = f.ticket.clone();
                    t.texts.truncate(t.texts.len().saturating_sub(f.texts.len()));
                    let text = crate::notify::follow_up_text(&self.notice(&t, &router), &new);
                    self.personal(&text, recipients, code, reg.opd(opd_code), now)
                }
                _ => Vec::new(),
            };
            if self.store.follow_up_sent(code, f.ticket.last_message_id, mails, now).await? {
                sent += 1;
                tracing::info!(ticket = %code, messages = new.len(), "Follow-up relayed to the OPD.");
            }
        }
        Ok(sent)
    }

    /// One watching round: dispositions, follow-ups, then warnings and escalations. Returns
    /// how many notifications were queued.
    pub async fn watch_once(&self) -> Result<usize, RoutingError> {
        let mut sent = self.dispose_once().await?;
        sent += self.follow_up_once().await?;
        let router = self.router();
        let now = self.clock.now();
        // A round reads only the tickets whose next alert is due (or whose clocks changed),
        // a batch at a time; after an upgrade or a burst it drains them in a few batches.
        for _ in 0..WATCH_BATCHES {
            let (n, queued) = self.watch_batch(&router, now).await?;
            sent += queued;
            if n < WATCH_BATCH {
                break;
            }
        }
        sent += self.revive_once().await?;
        sent += self.digest_once().await?;
        // Resolved tickets whose resident did not confirm in time are closed (issue 17).
        for code in self.store.expire_confirmations(1000, now).await? {
            tracing::info!(ticket = %code, "Ticket closed: no confirmation by the deadline.");
        }
        Ok(sent)
    }

    /// One batch of the deadline scan: the alerts due, then each ticket's next look.
    /// Returns the tickets looked at and the notifications queued.
    async fn watch_batch(
        &self,
        router: &Router,
        now: DateTime<Utc>,
    ) -> Result<(i64, usize), RoutingError> {
        let mut sent = 0;
        let mut schedule = Vec::new();
        let due = self.store.deadline_scan(WATCH_BATCH, now).await?;
        let n = due.len() as i64;
        for seen in due {
            let alerts = due_alerts(
                &seen,
                &self.cfg.calendar,
                self.cfg.default_resolution,
                self.cfg.warn_fraction,
                now,
            );
            let mut keys = seen.sent.clone();
            keys.extend(alerts.iter().map(|(alert, clock, _)| alert.key(*clock)));
            if !alerts.is_empty() {
                sent += self.send_alerts(&seen, alerts, router, now).await?;
            }
            let next = next_alert_at(
                &seen,
                &keys,
                &self.cfg.calendar,
                self.cfg.default_resolution,
                self.cfg.warn_fraction,
            );
            schedule.push(AlertSchedule::of(&seen.summary, next));
        }
        // Each ticket looked at leaves the due set until its next alert (or a change).
        self.store.alert_reschedule(schedule).await?;
        Ok((n, sent))
    }

    /// Queues the `alerts` due for `seen` (each once, by its key); returns how many were
    /// queued now.
    async fn send_alerts(
        &self,
        seen: &WatchedTicket,
        alerts: Vec<(Alert, ClockKind, DateTime<Utc>)>,
        router: &Router,
        now: DateTime<Utc>,
    ) -> Result<usize, RoutingError> {
        let reg = router.registry();
        let mut sent = 0;
        let t = self.store.watched_ticket(seen.summary.code, now).await?;
        {
            for (alert, clock, due) in alerts {
                let opd = t.summary.opd.as_deref().and_then(|o| reg.opd(o));
                let mut recipients = match (alert, opd) {
                    (Alert::Warning, Some(o)) => emails(&o.emails),
                    (Alert::Warning, None) => Vec::new(),
                    (Alert::Escalation, Some(o)) => match &o.head_email {
                        Some(h) => emails(std::slice::from_ref(h)),
                        None => emails(&o.emails),
                    },
                    (Alert::Escalation, None) => Vec::new(),
                };
                if alert == Alert::Escalation || opd.is_none() {
                    for a in &self.cfg.admins {
                        if !recipients.contains(a) {
                            recipients.push(a.clone());
                        }
                    }
                }
                let n = self.notice(&t, router);
                let (text, purpose) = match alert {
                    Alert::Warning => (warning_text(&n, clock, due), Purpose::Warning),
                    Alert::Escalation => (escalation_text(&n, clock, due), Purpose::Escalation),
                };
                let key = alert.key(clock);
                let mails = self.personal(&text, recipients, t.summary.code, opd, now);
                if self
                    .store
                    .notify_once_each(t.summary.code, key.clone(), purpose, mails, now)
                    .await?
                {
                    sent += 1;
                    tracing::info!(ticket = %t.summary.code, key, "Deadline notification queued.");
                }
            }
        }
        Ok(sent)
    }

    /// No notification to officials is dropped silently: each one `dead` for
    /// `notify_revive_after` is put back for another attempt, up to `notify_revivals` times,
    /// and then reported once to the admins (the recipients of every SLA escalation) with
    /// [`undelivered_text`]. Each step leaves a `notified` event on the ticket. Returns how
    /// many rows were revived or escalated.
    pub async fn revive_once(&self) -> Result<usize, RoutingError> {
        let now = self.clock.now();
        let dead = self.store.dead_notifications(now - self.cfg.notify_revive_after, 100).await?;
        let mut done = 0;
        for d in dead {
            let changed = if d.revivals < self.cfg.notify_revivals {
                let n = d.revivals + 1;
                let revived =
                    self.store.outbox_revive(d.id, n, self.cfg.notify_revivals, now).await?;
                if revived {
                    tracing::warn!(
                        ticket = %d.ticket,
                        outbox_id = d.id,
                        revival = n,
                        "Undelivered notification to officials put back for another attempt."
                    );
                }
                revived
            } else {
                let link = format!("{}/tickets/{}", self.cfg.public_url, d.ticket);
                let text = undelivered_text(&d, &link);
                let escalated = self
                    .store
                    .outbox_escalate_dead(d.id, self.cfg.admins.clone(), text, now)
                    .await?;
                if escalated {
                    tracing::error!(
                        ticket = %d.ticket,
                        outbox_id = d.id,
                        admins = self.cfg.admins.len(),
                        "Notification to officials given up; the admins were alerted."
                    );
                }
                escalated
            };
            done += usize::from(changed);
        }
        Ok(done)
    }

    /// Retrains the learned router from the imported history and the operators'
    /// dispositions ([`train_and_store`]) and stores it for every instance — unless the
    /// newest stored model (from another instance or `aduan routing train`) is younger than
    /// `retrain_every`: then that one is used. Returns the examples of the model in use, or
    /// `None` when there are too few (the rules route alone).
    pub async fn retrain(&self) -> Result<Option<usize>, RoutingError> {
        self.refresh_model().await?;
        let now = self.clock.now();
        let every =
            chrono::Duration::from_std(self.cfg.retrain_every).unwrap_or(chrono::Duration::MAX);
        let loaded = self.model_loaded.lock().map_or(None, |m| *m);
        if let Some((_, trained_at)) = loaded
            && now - trained_at < every
        {
            return Ok(self.router().model().map(Model::examples));
        }
        let Some((id, model)) =
            train_and_store(&self.store, &self.router(), &self.cfg, now).await?
        else {
            return Ok(None);
        };
        let n = model.examples();
        let labels = model.labels().len();
        self.install(id, now, model);
        tracing::info!(model = id, examples = n, labels, "Learned router retrained and stored.");
        Ok(Some(n))
    }

    /// Loads the newest stored model when it is not the one in use. `true` when it changed.
    pub async fn refresh_model(&self) -> Result<bool, RoutingError> {
        let Some(latest) = self.store.routing_model_latest_id().await? else { return Ok(false) };
        let loaded = self.model_loaded.lock().map_or(None, |m| *m);
        if loaded.is_some_and(|(id, _)| id == latest) {
            return Ok(false);
        }
        let Some(stored) = self.store.routing_model_latest().await? else { return Ok(false) };
        let (id, at) = (stored.id, stored.trained_at);
        let model = tokio::task::spawn_blocking(move || Model::from_bytes(&stored.bytes))
            .await
            .map_err(|e| RoutingError::Eval(format!("model loading task failed: {e}")))?;
        let Some(model) = model else {
            tracing::warn!(
                model = id,
                "Stored routing model not readable by this version; ignored."
            );
            // Not tried again until a newer one is stored.
            if let Ok(mut m) = self.model_loaded.lock() {
                *m = Some((id, at));
            }
            return Ok(false);
        };
        let n = model.examples();
        self.install(id, at, model);
        tracing::info!(model = id, examples = n, "Stored routing model loaded.");
        Ok(true)
    }

    fn install(&self, id: i64, trained_at: DateTime<Utc>, model: Model) {
        let new = Arc::new(self.router().with_model(Some(model)));
        match self.router.write() {
            Ok(mut r) => *r = new,
            Err(e) => *e.into_inner() = new,
        }
        match self.model_loaded.lock() {
            Ok(mut m) => *m = Some((id, trained_at)),
            Err(e) => *e.into_inner() = Some((id, trained_at)),
        }
    }

    /// Runs until shutdown: routing every `poll`, watching every `watch_every`, retraining
    /// every `retrain_every`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_watch: Option<tokio::time::Instant> = None;
        let mut last_train: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            let now = tokio::time::Instant::now();
            if last_train.is_none_or(|t| now - t >= self.cfg.retrain_every) {
                last_train = Some(now);
                if let Err(error) = self.retrain().await {
                    tracing::error!(%error, "Could not retrain the learned router.");
                }
            }
            let routed = match self.route_once().await {
                Ok(n) => n,
                Err(error) => {
                    tracing::error!(%error, "Routing round failed.");
                    0
                }
            };
            // The OPD hears of what was just routed now, not at the next deadline round.
            if routed > 0
                && let Err(error) = self.dispose_once().await
            {
                tracing::error!(%error, "Disposition round failed.");
            }
            if last_watch.is_none_or(|t| now - t >= self.cfg.watch_every) {
                last_watch = Some(now);
                // A model another instance stored is picked up within a watch period.
                if let Err(error) = self.refresh_model().await {
                    tracing::error!(%error, "Could not check for a newer routing model.");
                }
                if let Err(error) = self.watch_once().await {
                    tracing::error!(%error, "Deadline round failed.");
                }
            }
            if routed < self.cfg.batch as usize {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.cfg.poll) => {}
                }
            }
        }
    }
}

// --- officials: action links in every mail to an OPD, and the daily digest ---

impl Routing {
    /// One mail per recipient: the OPD's own officials get `text` with their signed action
    /// links ([`crate::links`]); anyone else (admins) gets `text` alone.
    fn personal(
        &self,
        text: &str,
        recipients: Vec<Identity>,
        ticket: aduan_core::TicketCode,
        opd: Option<&crate::Opd>,
        now: DateTime<Utc>,
    ) -> aduan_store::PersonalMails {
        recipients
            .into_iter()
            .map(|r| {
                let links = match (&self.cfg.links, opd) {
                    (Some(signer), Some(o)) if is_official(o, &r) => {
                        Some(signer.block(ticket, &o.code, &r.value, now))
                    }
                    _ => None,
                };
                let text = match links {
                    Some(block) => format!("{}\n\n{block}", text.trim_end()),
                    None => text.to_owned(),
                };
                (r, text)
            })
            .collect()
    }

    /// Sends each OPD head the day's digest when it is due ([`crate::links::digest_day`]):
    /// once per OPD and local day across instances (the store's claim), only when there is
    /// something to list. Returns how many digests were queued.
    pub async fn digest_once(&self) -> Result<usize, RoutingError> {
        use crate::links::{digest_day, digest_sections, next_due};
        let now = self.clock.now();
        let Some(day) = digest_day(&self.cfg.calendar, self.cfg.digest_hour, now) else {
            return Ok(0);
        };
        let router = self.router();
        let reg = router.registry();
        let mut sent = 0;
        for o in &reg.opd {
            let done = |set: &mut std::collections::BTreeSet<_>| !set.insert((o.code.clone(), day));
            let seen = match self.digests_done.lock() {
                Ok(set) => set.contains(&(o.code.clone(), day)),
                Err(e) => e.into_inner().contains(&(o.code.clone(), day)),
            };
            if seen {
                continue;
            }
            let recipients = match &o.head_email {
                Some(h) => emails(std::slice::from_ref(h)),
                None => emails(&o.emails),
            };
            let day_s = day.format("%Y-%m-%d").to_string();
            let since = self.store.last_digest(o.code.clone(), day_s.clone()).await?;
            let tickets = self.store.digest_tickets(o.code.clone(), 500, now).await?;
            let (new, overdue, due_today) =
                digest_sections(&tickets, since, &self.cfg.calendar, now);
            let anchor =
                new.iter().chain(&overdue).chain(&due_today).next().map(|t| t.summary.code);
            let (Some(anchor), false) = (anchor, recipients.is_empty()) else {
                match self.digests_done.lock() {
                    Ok(mut set) => done(&mut set),
                    Err(e) => done(&mut e.into_inner()),
                };
                continue;
            };
            let mails = recipients
                .into_iter()
                .map(|r| {
                    let line = |t: &&aduan_store::DigestTicket| aduan_core::texts::DigestLine {
                        code: t.summary.code,
                        category: t
                            .summary
                            .category
                            .as_deref()
                            .map(|c| reg.category(c).map_or(c, |x| x.name.as_str()).to_owned()),
                        place: t.summary.place.clone(),
                        due: next_due(t),
                        links: match &self.cfg.links {
                            Some(s) if is_official(o, &r) => {
                                s.block(t.summary.code, &o.code, &r.value, now)
                            }
                            _ => format!(
                                "Lihat: {}/tickets/{}\n",
                                self.cfg.public_url, t.summary.code
                            ),
                        },
                    };
                    let lines =
                        |v: &[&aduan_store::DigestTicket]| v.iter().map(line).collect::<Vec<_>>();
                    let text = aduan_core::texts::daily_digest(
                        &o.name,
                        day,
                        &lines(&new),
                        &lines(&overdue),
                        &lines(&due_today),
                    );
                    (r, text)
                })
                .collect();
            let queued = self.store.digest_once(o.code.clone(), day_s, anchor, mails, now).await?;
            match self.digests_done.lock() {
                Ok(mut set) => done(&mut set),
                Err(e) => done(&mut e.into_inner()),
            };
            if queued {
                sent += 1;
                tracing::info!(opd = o.code, day = %day, new = new.len(), overdue = overdue.len(), due_today = due_today.len(), "Daily digest queued.");
            }
        }
        Ok(sent)
    }
}

/// Whether `r` is one of the OPD's own officials (its `emails` or its head).
fn is_official(o: &crate::Opd, r: &Identity) -> bool {
    r.kind == aduan_core::IdentityKind::Email
        && (o.emails.iter().any(|e| e.trim().eq_ignore_ascii_case(&r.value))
            || o.head_email.as_deref().is_some_and(|h| h.trim().eq_ignore_ascii_case(&r.value)))
}

/// Examples (history + dispositions) enough to train once history has been imported.
pub const MIN_WITH_HISTORY: usize = 20;

/// Fits the learned router on the imported history and the dispositions of this
/// database (weighted as [`crate::history::training_set`] says) and stores it. `None` when
/// there is too little to learn from: fewer than `min_examples` dispositions and no
/// history, fewer than [`MIN_WITH_HISTORY`] examples, or a single label.
pub async fn train_and_store(
    store: &Store,
    router: &Arc<Router>,
    cfg: &WorkerConfig,
    now: DateTime<Utc>,
) -> Result<Option<(i64, Model)>, RoutingError> {
    let history = store.routing_history(cfg.max_examples).await?;
    let dispositions = store.training_examples_dated(cfg.max_examples).await?;
    let enough = if history.is_empty() {
        dispositions.len() >= cfg.min_examples
    } else {
        history.len() + dispositions.len() >= MIN_WITH_HISTORY
    };
    if !enough {
        return Ok(None);
    }
    let (h, d) = (history.len(), dispositions.len());
    let router = router.clone();
    let train = cfg.train;
    let model = tokio::task::spawn_blocking(move || {
        let (texts, labels, weights) = crate::history::training_set(history, dispositions, now);
        let docs: Vec<_> = texts.iter().map(|t| router.doc(t)).collect();
        Model::train_weighted(&docs, &labels, &weights, &train)
    })
    .await
    .map_err(|e| RoutingError::Eval(format!("training task failed: {e}")))?;
    let Some(model) = model else { return Ok(None) };
    let bytes = model.to_bytes();
    let id = store
        .routing_model_save(
            i64::from(crate::model::FORMAT_VERSION),
            model.examples() as i64,
            model.labels().len() as i64,
            &bytes,
        )
        .await?;
    tracing::info!(
        model = id,
        history = h,
        dispositions = d,
        bytes = bytes.len(),
        "Routing model stored."
    );
    Ok(Some((id, model)))
}
