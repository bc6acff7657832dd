//! Counters and gauges of `/metrics`, and the log lines that go with them.

use std::sync::Mutex;

use aduan_core::Channel;
use aduan_store::Ingested;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    channel: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpdLabel {
    opd: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabel {
    lease: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    channel: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
    outcome: String,
}

/// The reasons of `aduan_http_refused_total` (all exported from the start, at 0).
pub const HTTP_REFUSALS: [&str; 6] =
    ["header_timeout", "body_timeout", "connection_cap", "busy", "too_large", "body_budget"];

/// Every metric aduan exports. One per process, shared by all components.
pub struct Telemetry {
    registry: Registry,
    messages_received: Family<ChannelLabel, Counter>,
    messages_duplicate: Family<ChannelLabel, Counter>,
    messages_quarantined: Family<ChannelLabel, Counter>,
    tickets_created: Family<ChannelLabel, Counter>,
    webhook_rejected: Family<RejectLabel, Counter>,
    outbound_sent: Family<ChannelLabel, Counter>,
    outbound_failed: Family<ChannelLabel, Counter>,
    tickets_overdue: Family<OpdLabel, Gauge>,
    connector_up: Family<ChannelLabel, Gauge>,
    outbox_rows: Family<StateLabel, Gauge>,
    lease_held: Family<LeaseLabel, Gauge>,
    auto_refused: Family<ReasonLabel, Counter>,
    http_refused: Family<ReasonLabel, Counter>,
    email_automated: Family<ClassLabel, Counter>,
    delivery_failed: Family<ChannelLabel, Counter>,
    outbound_undeliverable: Family<RejectLabel, Counter>,
    official_actions: Family<ActionLabel, Counter>,
    /// Serialises gauge refreshes so two scrapes don't interleave resets.
    refresh: Mutex<()>,
    routing_auto: Family<OpdLabel, Counter>,
    routing_manual: Family<OpdLabel, Counter>,
    routing_redisposed: Family<OpdLabel, Counter>,
}

fn label(channel: Channel) -> ChannelLabel {
    ChannelLabel { channel: channel.as_str().to_owned() }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("aduan");
        let t = Telemetry {
            messages_received: Family::default(),
            messages_duplicate: Family::default(),
            messages_quarantined: Family::default(),
            tickets_created: Family::default(),
            webhook_rejected: Family::default(),
            outbound_sent: Family::default(),
            outbound_failed: Family::default(),
            tickets_overdue: Family::default(),
            connector_up: Family::default(),
            outbox_rows: Family::default(),
            lease_held: Family::default(),
            auto_refused: Family::default(),
            http_refused: Family::default(),
            email_automated: Family::default(),
            delivery_failed: Family::default(),
            outbound_undeliverable: Family::default(),
            official_actions: Family::default(),
            refresh: Mutex::new(()),
            registry: Registry::default(),
            routing_auto: Family::default(),
            routing_manual: Family::default(),
            routing_redisposed: Family::default(),
        };
        registry.register(
            "official_actions",
            "Officials' action links posted, by action and outcome (done, used, other_opd, not_now, needs_text)",
            t.official_actions.clone(),
        );
        registry.register(
            "messages_received",
            "Inbound messages stored",
            t.messages_received.clone(),
        );
        registry.register(
            "messages_duplicate",
            "Inbound messages recognised as redeliveries and not stored again",
            t.messages_duplicate.clone(),
        );
        registry.register(
            "messages_quarantined",
            "Inbound messages that could not be read at all and were set aside for an operator",
            t.messages_quarantined.clone(),
        );
        registry.register("tickets_created", "Tickets opened", t.tickets_created.clone());
        registry.register(
            "webhook_rejected",
            "Webhook requests refused (bad signature, malformed, …)",
            t.webhook_rejected.clone(),
        );
        registry.register(
            "outbound_sent",
            "Answers delivered to residents",
            t.outbound_sent.clone(),
        );
        registry.register("outbound_failed", "Failed delivery attempts", t.outbound_failed.clone());
        registry.register(
            "tickets_overdue",
            "Open tickets past their first-response deadline",
            t.tickets_overdue.clone(),
        );
        registry.register(
            "connector_up",
            "1 while a channel's connector runs",
            t.connector_up.clone(),
        );
        registry.register("outbox_rows", "Outbox rows by channel and state", t.outbox_rows.clone());
        registry.register(
            "lease_held",
            "1 while this instance holds the lease of a poller that runs on one instance at a time",
            t.lease_held.clone(),
        );
        registry.register(
            "auto_messages_refused",
            "Automatic messages to residents kept but not sent: over the per-recipient daily \
             (recipient_day) or the hourly (hour) cap; counted in the database",
            t.auto_refused.clone(),
        );
        registry.register(
            "outbound_undeliverable",
            "Answers a provider could not deliver on a channel, by reason (window_closed, \
             blocked, not_on_channel, recipient_invalid); each then goes to the resident's next \
             channel or waits for them to write",
            t.outbound_undeliverable.clone(),
        );
        registry.register(
            "http_refused",
            "HTTP requests and connections refused or cut by the server's limits: \
             header_timeout, body_timeout, connection_cap, busy (503), too_large (413), \
             body_budget (a chunked body over the in-flight budget)",
            t.http_refused.clone(),
        );
        registry.register(
            "email_automated",
            "Machine mail (bounces, auto-replies, lists, reports, spam, …) moved to the \
             automated mailbox without a ticket or an answer, by class",
            t.email_automated.clone(),
        );
        registry.register(
            "delivery_failed",
            "Outbound messages the provider reported undeliverable (a failed receipt: WhatsApp, \
             Twilio, Kannel, SMS Gateway for Android; or a mail bounce); counted in the database",
            t.delivery_failed.clone(),
        );
        registry.register(
            "routing_auto",
            "Tickets the router disposed to an OPD without a person (their first disposition), \
             by OPD; counted in the database",
            t.routing_auto.clone(),
        );
        registry.register(
            "routing_manual",
            "Tickets a person disposed first, by OPD; counted in the database",
            t.routing_manual.clone(),
        );
        registry.register(
            "routing_redisposed",
            "Tickets the router disposed that a person later disposed to another OPD, by the \
             router's OPD (its real error); counted in the database",
            t.routing_redisposed.clone(),
        );
        for reason in HTTP_REFUSALS {
            let _ = t.http_refused.get_or_create(&ReasonLabel { reason: reason.to_owned() });
        }
        for channel in Channel::ALL {
            let _ = t.messages_received.get_or_create(&label(channel));
            let _ = t.messages_quarantined.get_or_create(&label(channel));
            let _ = t.tickets_created.get_or_create(&label(channel));
            let _ = t.outbound_sent.get_or_create(&label(channel));
            let _ = t.outbound_failed.get_or_create(&label(channel));
            let _ = t.delivery_failed.get_or_create(&label(channel));
            // The intake API is served by the process itself; channels are up once their
            // connector runs.
            t.connector_up.get_or_create(&label(channel)).set(i64::from(channel == Channel::Web));
        }
        t.set_overdue(&[]);
        Telemetry { registry, ..t }
    }

    pub fn message_stored(&self, channel: Channel, outcome: &Ingested) {
        if outcome.duplicate {
            self.messages_duplicate.get_or_create(&label(channel)).inc();
            tracing::debug!(%channel, message_id = outcome.message_id, "Redelivered message recognised; nothing stored.");
            return;
        }
        self.messages_received.get_or_create(&label(channel)).inc();
        if outcome.ticket_created {
            self.tickets_created.get_or_create(&label(channel)).inc();
        }
        tracing::info!(
            %channel,
            message_id = outcome.message_id,
            ticket = outcome.ticket.map(|c| c.to_string()),
            created = outcome.ticket_created,
            reopened = outcome.reopened,
            "Message stored."
        );
    }

    /// A message that could not be read at all was set aside (e.g. an email moved to the
    /// quarantine folder); `id` is the provider's handle, `reason` says why.
    pub fn message_quarantined(&self, channel: Channel, id: &str, reason: &str) {
        self.messages_quarantined.get_or_create(&label(channel)).inc();
        tracing::warn!(%channel, id, reason, "Unreadable message set aside for an operator.");
    }

    pub fn webhook_rejected(&self, channel: Channel, reason: &'static str) {
        self.webhook_rejected
            .get_or_create(&RejectLabel {
                channel: channel.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        tracing::warn!(%channel, reason, "Rejected webhook request.");
    }

    pub fn outbound_sent(&self, channel: Channel, outbox_id: i64) {
        self.outbound_sent.get_or_create(&label(channel)).inc();
        tracing::info!(%channel, outbox_id, "Answer delivered.");
    }

    pub fn outbound_failed(&self, channel: Channel, outbox_id: i64, error: &str, gave_up: bool) {
        self.outbound_failed.get_or_create(&label(channel)).inc();
        if gave_up {
            tracing::error!(%channel, outbox_id, error, "Answer could not be delivered; gave up.");
        } else {
            tracing::warn!(%channel, outbox_id, error, "Answer delivery failed; will retry.");
        }
    }

    pub fn outbound_undeliverable(
        &self,
        channel: Channel,
        outbox_id: i64,
        reason: aduan_core::UndeliverableReason,
    ) {
        let labels = RejectLabel {
            channel: channel.as_str().to_owned(),
            reason: reason.as_str().to_owned(),
        };
        self.outbound_undeliverable.get_or_create(&labels).inc();
        tracing::debug!(%channel, outbox_id, reason = reason.as_str(), "Answer undeliverable on this channel.");
    }

    pub fn connector_up(&self, channel: Channel, up: bool) {
        self.connector_up.get_or_create(&label(channel)).set(i64::from(up));
    }

    pub fn lease_held(&self, lease: &str, held: bool) {
        self.lease_held.get_or_create(&LeaseLabel { lease: lease.to_owned() }).set(i64::from(held));
    }

    /// Replaces the overdue gauge with fresh counts (`None` = not yet assigned).
    pub fn set_overdue(&self, counts: &[(Option<String>, i64)]) {
        let _guard = self.refresh.lock();
        self.tickets_overdue.clear();
        self.tickets_overdue.get_or_create(&OpdLabel { opd: "unassigned".into() }).set(0);
        for (opd, n) in counts {
            let opd = opd.clone().unwrap_or_else(|| "unassigned".to_owned());
            self.tickets_overdue.get_or_create(&OpdLabel { opd }).set(*n);
        }
    }

    /// Replaces the outbox gauge with fresh counts.
    pub fn set_outbox(&self, counts: &[(Channel, aduan_core::OutboxState, i64)]) {
        let _guard = self.refresh.lock();
        self.outbox_rows.clear();
        for (channel, state, n) in counts {
            self.outbox_rows
                .get_or_create(&StateLabel {
                    channel: channel.as_str().to_owned(),
                    state: state.as_str().to_owned(),
                })
                .set(*n);
        }
    }

    /// Brings the refused-automatic-message counters up to the store's counts (which only
    /// grow: refused rows stay in the outbox).
    pub fn set_auto_refused(&self, counts: &[(String, i64)]) {
        let _guard = self.refresh.lock();
        for (reason, n) in counts {
            let counter = self.auto_refused.get_or_create(&ReasonLabel { reason: reason.clone() });
            let n = u64::try_from(*n).unwrap_or(0);
            if n > counter.get() {
                counter.inc_by(n - counter.get());
            }
        }
    }

    /// The HTTP server refused or cut a request or connection (`reason` is one of
    /// [`HTTP_REFUSALS`]); logged where it happens.
    pub fn http_refused(&self, reason: &'static str) {
        self.http_refused.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    /// An official posted an action link (`action` as in the token, `outcome` what came of
    /// it).
    pub fn official_action(&self, action: &str, outcome: &str) {
        let l = ActionLabel { action: action.to_owned(), outcome: outcome.to_owned() };
        self.official_actions.get_or_create(&l).inc();
    }

    /// The email poller moved a machine mail of `class` (`aduan_email::Automated`'s
    /// name: `bounce`, `spam`, …) to the automated mailbox.
    pub fn email_automated(&self, class: &str) {
        self.email_automated.get_or_create(&ClassLabel { class: class.to_owned() }).inc();
    }

    /// Brings the delivery-failure counters up to the store's counts (failed receipts stay
    /// on their outbox rows, so the counts only grow).
    pub fn set_delivery_failed(&self, counts: &[(Channel, i64)]) {
        let _guard = self.refresh.lock();
        for (channel, n) in counts {
            let counter = self.delivery_failed.get_or_create(&label(*channel));
            let n = u64::try_from(*n).unwrap_or(0);
            if n > counter.get() {
                counter.inc_by(n - counter.get());
            }
        }
    }

    /// A provider's callback brought delivery receipts: `matched` of them found their
    /// outbox row (the others name messages we don't know, or not yet).
    pub fn receipts_applied(&self, channel: Channel, total: usize, matched: usize, failed: usize) {
        if matched < total {
            tracing::info!(%channel, total, matched, failed, "Delivery receipts recorded; some matched no outbox row.");
        } else {
            tracing::debug!(%channel, total, failed, "Delivery receipts recorded.");
        }
    }

    /// Brings the routing counters up to the store's (`routing_counts`, kept on every
    /// disposition, so they only grow; read per scrape as one row per OPD).
    pub fn set_routing_counts(&self, counts: &[aduan_store::RoutingCount]) {
        let _guard = self.refresh.lock();
        for c in counts {
            let opd = OpdLabel { opd: c.opd.clone() };
            for (family, n) in [
                (&self.routing_auto, c.auto),
                (&self.routing_manual, c.manual),
                (&self.routing_redisposed, c.redisposed),
            ] {
                let counter = family.get_or_create(&opd);
                let n = u64::try_from(n).unwrap_or(0);
                if n > counter.get() {
                    counter.inc_by(n - counter.get());
                }
            }
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String can't fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_metric_is_exported() {
        let t = Telemetry::new();
        t.webhook_rejected(Channel::Telegram, "forbidden");
        t.connector_up(Channel::Email, true);
        t.set_overdue(&[(Some("DPU".into()), 3), (None, 1)]);
        let text = t.render();
        for needle in [
            "aduan_messages_received_total{channel=\"web\"} 0",
            "aduan_tickets_created_total{channel=\"sms\"} 0",
            "aduan_messages_quarantined_total{channel=\"email\"} 0",
            "aduan_webhook_rejected_total{channel=\"telegram\",reason=\"forbidden\"} 1",
            "aduan_outbound_sent_total{channel=\"email\"} 0",
            "aduan_outbound_failed_total{channel=\"x\"} 0",
            "aduan_tickets_overdue{opd=\"DPU\"} 3",
            "aduan_tickets_overdue{opd=\"unassigned\"} 1",
            "aduan_connector_up{channel=\"email\"} 1",
            "aduan_connector_up{channel=\"web\"} 1",
            "aduan_connector_up{channel=\"sms\"} 0",
            "aduan_http_refused_total{reason=\"busy\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn machine_mail_is_counted_by_class() {
        let t = Telemetry::new();
        assert!(!t.render().contains("aduan_email_automated_total{"));
        t.email_automated("bounce");
        t.email_automated("bounce");
        t.email_automated("spam");
        let text = t.render();
        assert!(text.contains("aduan_email_automated_total{class=\"bounce\"} 2"), "{text}");
        assert!(text.contains("aduan_email_automated_total{class=\"spam\"} 1"), "{text}");
    }

    /// Issue 18.6: the routing counters follow the store's, per OPD.
    #[test]
    fn routing_counters_follow_the_store() {
        let t = Telemetry::new();
        let count = |auto, manual, redisposed| aduan_store::RoutingCount {
            opd: "DPU".into(),
            auto,
            manual,
            redisposed,
        };
        t.set_routing_counts(&[count(2, 1, 1)]);
        t.set_routing_counts(&[count(3, 1, 1)]);
        let text = t.render();
        for needle in [
            "aduan_routing_auto_total{opd=\"DPU\"} 3",
            "aduan_routing_manual_total{opd=\"DPU\"} 1",
            "aduan_routing_redisposed_total{opd=\"DPU\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
