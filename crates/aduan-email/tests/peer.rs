//! The email connector against a real Dovecot + Postfix (started by `cargo xtask test`;
//! see `aduan_email::testkit`). Each test runs the connector in-process on its own SQLite
//! store and its own folders (`intake+<tag>@aduan.test` is delivered into the folder
//! `<tag>` of `intake`), with the outbound worker sending through Postfix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aduan_connector::outbound::{self, OutboundConfig};
use aduan_connector::{Connector, ConnectorContext, SendError, Telemetry};
use aduan_core::{Actor, Channel, Direction, Identity, OutboxState, Purpose};
use aduan_email::imap::{self, Capabilities, ImapTls};
use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_email::{EmailConfig, EmailConnector, ImapAccount, Officials, Secret};
use aduan_store::{OutboxItem, Store, StoreOptions, TicketFilter, TicketView};
use mail_parser::MessageParser;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

/// A connector and an outbound worker running on a fresh store, on the folders of `tag`.
struct Env {
    peer: MailPeer,
    tag: String,
    store: Store,
    telemetry: Arc<Telemetry>,
    connector: Arc<EmailConnector>,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn config(
        peer: &MailPeer,
        tag: &str,
        dir: &std::path::Path,
        officials: Officials,
    ) -> EmailConfig {
        EmailConfig {
            account: peer.account("intake"),
            mailbox: tag.to_owned(),
            processed_mailbox: format!("{tag}-processed"),
            quarantine_mailbox: format!("{tag}-quarantine"),
            automated_mailbox: format!("{tag}-automated"),
            smtp_url: Secret::new(format!("smtp://{}", peer.smtp)),
            from: format!("Lapak Aduan <{}>", peer.address("intake", Some(tag))),
            attachments_dir: dir.join("attachments"),
            officials,
            poll: Duration::from_secs(20),
            reply_token_secret: None,
            trusted_authserv_id: None,
            max_message_bytes: aduan_email::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    async fn start(peer: &MailPeer, prefix: &str) -> Env {
        Env::start_with(peer, prefix, Officials::default(), |c| c).await
    }

    /// Creates the folders, then starts; `adjust` edits the config first.
    async fn start_with(
        peer: &MailPeer,
        prefix: &str,
        officials: Officials,
        adjust: impl FnOnce(EmailConfig) -> EmailConfig,
    ) -> Env {
        let tag = unique_tag(prefix);
        peer.create_folder("intake", &tag).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let config = adjust(Env::config(peer, &tag, dir.path(), officials));
        let mut env = Env {
            peer: peer.clone(),
            tag,
            store,
            telemetry: Arc::new(Telemetry::new()),
            connector: Arc::new(EmailConnector::new(config).unwrap()),
            shutdown: CancellationToken::new(),
            tasks: tokio::task::JoinSet::new(),
            _dir: dir,
        };
        env.spawn();
        env
    }

    fn cx(&self) -> ConnectorContext {
        ConnectorContext {
            store: self.store.clone(),
            telemetry: self.telemetry.clone(),
            blobs: aduan_connector::BlobStore::new(
                self._dir.path().join("attachments"),
                aduan_connector::StorageFloor::default(),
            ),
            shutdown: self.shutdown.clone(),
        }
    }

    fn spawn(&mut self) {
        let connector: Arc<dyn Connector> = self.connector.clone();
        self.tasks.spawn(aduan_connector::supervise(connector.clone(), self.cx()));
        let cfg = OutboundConfig {
            poll: Duration::from_millis(100),
            backoff: Duration::from_secs(1),
            ..OutboundConfig::default()
        };
        self.tasks.spawn(outbound::run(self.cx(), vec![connector], cfg));
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    fn intake(&self) -> String {
        self.peer.address("intake", Some(&self.tag))
    }

    fn resident(&self) -> String {
        self.peer.address("warga", Some(&self.tag))
    }

    async fn tickets(&self) -> Vec<TicketView> {
        let page = self
            .store
            .tickets(&TicketFilter { limit: 500, ..TicketFilter::default() })
            .await
            .unwrap();
        let mut out = Vec::new();
        for t in page.items {
            out.push(self.store.ticket(t.code).await.unwrap().unwrap());
        }
        out
    }

    /// Waits until the intake folder is empty, `processed` mails were moved to the
    /// processed folder and `automated` to the automated one.
    async fn wait_moved(&self, processed: u32, automated: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            let done = self.peer.count("intake", &format!("{}-processed", self.tag)).await;
            let machines = self.peer.count("intake", &format!("{}-automated", self.tag)).await;
            let left = self.peer.count("intake", &self.tag).await;
            if done >= processed && machines >= automated && left == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {processed} mails processed, {machines} of {automated} automated, \
                 {left} left, after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the intake folder is empty and `processed` mails were moved out of it.
    async fn wait_processed(&self, processed: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            let done = self.peer.count("intake", &format!("{}-processed", self.tag)).await;
            let left = self.peer.count("intake", &self.tag).await;
            if done >= processed && left == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {processed} mails processed, {left} left, after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it gives `Some`, for at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default().parse(raw).expect("a mail")
}

fn body(raw: &[u8]) -> String {
    parse(raw).body_text(0).map(|b| b.into_owned()).unwrap_or_default()
}

#[tokio::test]
async fn a_complaint_is_acknowledged_threaded_routed_and_answered_by_the_official() {
    let Some(peer) = MailPeer::from_env() else { return };
    // The official's registry address is on this test's folder (`kepala.dpu+<tag>`).
    let mut env = Env::start_with(&peer, "loop", Officials::default(), |mut c| {
        c.officials = Officials::new([("DPU", peer.address("kepala.dpu", Some(&c.mailbox)))]);
        c
    })
    .await;
    let (tag, intake, resident) = (env.tag.clone(), env.intake(), env.resident());

    // 1. The resident writes; the mail becomes one ticket.
    let first_id = format!("c1.{tag}@warga.example");
    let complaint = plain_mail(
        &format!("Siti Aminah <{resident}>"),
        &intake,
        "Jalan berlubang di Karangklesem",
        &first_id,
        "Lubang besar di depan SD 1, sudah dua minggu.\n\nDikirim dari iPhone saya",
    );
    peer.smtp_send(&resident, &[&intake], &complaint).await;
    let ticket = eventually("the ticket", || async {
        let t = env.tickets().await;
        (t.len() == 1).then(|| t[0].clone())
    })
    .await;
    let code = ticket.summary.code;
    assert_eq!(ticket.summary.channel, Channel::Email);
    assert_eq!(
        ticket.messages[0].text,
        "Jalan berlubang di Karangklesem\n\nLubang besar di depan SD 1, sudah dua minggu."
    );
    assert_eq!(ticket.messages[0].author.as_deref(), Some("Siti Aminah"));
    assert_eq!(
        ticket.reporter.as_ref().map(|r| r.identities.clone()),
        Some(vec![Identity::email(&resident).unwrap()])
    );

    // 2. The resident's mailbox holds the receipt with the code, threaded under their mail.
    let mails = peer.wait_for("warga", &tag, 1, WAIT).await;
    let ack = parse(&mails[0]);
    let ack_id = ack.message_id().unwrap().to_owned();
    assert!(ack.subject().unwrap().contains(&format!("[{code}]")), "{:?}", ack.subject());
    assert_eq!(ack.in_reply_to().as_text(), Some(first_id.as_str()));
    assert_eq!(ack.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    assert!(body(&mails[0]).contains(&code.to_string()));

    // 3. Their reply to the receipt joins the same ticket, without another receipt.
    let reply = format!(
        "From: {resident}\r\nTo: {intake}\r\nSubject: Re: {}\r\nMessage-ID: <c2.{tag}@warga.example>\r\n\
         In-Reply-To: <{ack_id}>\r\nReferences: <{first_id}> <{ack_id}>\r\n\r\n\
         Lubangnya makin besar.\r\n\r\nOn Mon, 20 Apr 2026, Lapak Aduan <{intake}> wrote:\r\n> Terima kasih\r\n",
        ack.subject().unwrap()
    );
    peer.smtp_send(&resident, &[&intake], reply.as_bytes()).await;
    let ticket = eventually("the reply on the ticket", || async {
        let t = env.store.ticket(code).await.unwrap().unwrap();
        (t.messages.iter().filter(|m| m.direction == Direction::In).count() == 2).then_some(t)
    })
    .await;
    assert_eq!(env.tickets().await.len(), 1);
    let texts: Vec<&str> = ticket.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.last(), Some(&"Lubangnya makin besar."), "{texts:?}");

    // 4. Assigned to DPU, the official gets the notification.
    env.store
        .assign(code, "DPU".into(), Actor::User("operator@aduan.test".into()), None)
        .await
        .unwrap();
    // The routing worker's disposition notice is an outbox row (the live path: its text
    // comes from `aduan_routing::notify`), mailed by the outbound worker.
    let official_inbox = peer.address("kepala.dpu", Some(&tag));
    let queued = env
        .store
        .notify_once(
            code,
            "disposition:DPU".into(),
            Purpose::Disposition,
            vec![Identity::email(&official_inbox).unwrap()],
            "Aduan masyarakat berikut didisposisikan kepada Dinas Pekerjaan Umum.\n\n\
             Pelapor : S*** A***"
                .into(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(queued);
    let notified = peer.wait_for("kepala.dpu", &tag, 1, WAIT).await;
    let n = parse(&notified[0]);
    let notification_id = n.message_id().unwrap().to_owned();
    assert!(n.subject().unwrap().contains(&format!("[{code}]")), "{:?}", n.subject());
    assert_eq!(n.header_raw("Auto-Submitted").map(str::trim), Some("auto-generated"));
    let reply_to =
        n.reply_to().and_then(|r| r.first()).and_then(|a| a.address()).unwrap().to_owned();
    // Our intake address with the reply token of this ticket and official in a second
    // plus-part.
    let (intake_local, intake_domain) = intake.split_once('@').unwrap();
    let token = reply_to
        .strip_prefix(&format!("{intake_local}+"))
        .and_then(|r| r.strip_suffix(&format!("@{intake_domain}")))
        .unwrap_or_else(|| panic!("{reply_to} is not {intake} with a token"));
    assert_eq!(token.len(), 32, "{reply_to}");
    assert!(body(&notified[0]).contains("S*** A***"));

    // 5. The official answers by replying; the answer goes to the resident.
    let official = official_inbox.clone();
    let answer = format!(
        "From: Kepala DPU <{official}>\r\nTo: {reply_to}\r\nSubject: Re: {}\r\nMessage-ID: <o1.{tag}@dpu.example>\r\n\
         In-Reply-To: <{notification_id}>\r\n\r\nSudah kami tambal hari ini.\r\n\r\n\
         Pada Sen, 20 Apr 2026 10.00, Lapak Aduan <{intake}> menulis:\r\n> Aduan berikut didisposisikan\r\n",
        n.subject().unwrap()
    );
    peer.smtp_send(&official, &[&reply_to], answer.as_bytes()).await;
    let mails = peer.wait_for("warga", &tag, 2, WAIT).await;
    let relayed =
        mails.iter().find(|m| body(m).contains("Sudah kami tambal hari ini.")).expect("the answer");
    let relayed_body = body(relayed);
    assert!(!relayed_body.contains("didisposisikan"), "{relayed_body}");
    let relayed = parse(relayed);
    assert!(relayed.subject().unwrap().contains(&format!("[{code}] Tanggapan atas aduan Anda")));
    assert_eq!(relayed.header_raw("Auto-Submitted"), None);

    let ticket = env.store.ticket(code).await.unwrap().unwrap();
    assert!(ticket.summary.first_responded_at.is_some());
    let out = ticket.messages.iter().rfind(|m| m.direction == Direction::Out).unwrap();
    assert_eq!(out.author.as_deref(), Some(format!("user:{official}").as_str()));
    assert_eq!(out.purpose, Some(Purpose::Reply));
    assert_eq!(out.delivery, Some(OutboxState::Sent));
    // The official's own mail is not a resident message of the ticket.
    assert_eq!(ticket.messages.iter().filter(|m| m.direction == Direction::In).count(), 2);
    env.wait_processed(3).await;
    env.stop().await;
}

/// A DSN for `id`, as Postfix writes them.
fn dsn(to: &str, id: &str, tag: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.id (Mail Delivery System)\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn.{tag}@mx.example.id>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.id\r\n\r\n\
         Final-Recipient: rfc822; siti@example.id\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{id}>\r\nSubject: [ADU] x\r\n--B--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn bounces_and_out_of_office_replies_open_nothing_and_get_nothing() {
    let Some(peer) = MailPeer::from_env() else { return };
    let mut env = Env::start(&peer, "auto").await;
    let (tag, intake, resident) = (env.tag.clone(), env.intake(), env.resident());
    peer.smtp_send(
        &resident,
        &[&intake],
        &plain_mail(&resident, &intake, "Lampu jalan mati", &format!("l1.{tag}@w"), "Di RT 3."),
    )
    .await;
    let ack = peer.wait_for("warga", &tag, 1, WAIT).await;
    let ack_id = parse(&ack[0]).message_id().unwrap().to_owned();
    let code = env.tickets().await[0].summary.code;
    eventually("the receipt recorded as sent", || async {
        let counts = env.store.outbox_counts().await.unwrap();
        (counts == vec![(Channel::Email, OutboxState::Sent, 1)]).then_some(())
    })
    .await;

    // Our receipt bounces; the resident's auto-responder answers; two real-world machines.
    peer.append("intake", &tag, &dsn(&intake, &ack_id, &tag)).await;
    let ooo = format!(
        "From: {resident}\r\nTo: {intake}\r\nSubject: Out of Office: Re: [{code}] Aduan\r\n\
         Message-ID: <ooo.{tag}@w>\r\nIn-Reply-To: <{ack_id}>\r\nAuto-Submitted: auto-replied\r\n\r\n\
         Saya sedang cuti sampai 30 April.\r\n"
    );
    peer.append("intake", &tag, ooo.as_bytes()).await;
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chatwoot-helpdesk");
    for name in ["bounced_gmail.eml", "auto_reply.eml", "auto_reply_with_auto_submitted.eml"] {
        peer.append("intake", &tag, &std::fs::read(fixtures.join(name)).unwrap()).await;
    }
    // The complaint is processed; the five machines' mails are kept in the automated folder.
    env.wait_moved(1, 5).await;
    assert_eq!(peer.count("intake", &format!("{tag}-processed")).await, 1);

    // No new ticket, nothing sent, and the receipt's delivery shows as failed.
    let tickets = env.tickets().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        env.store.outbox_counts().await.unwrap(),
        vec![(Channel::Email, OutboxState::Dead, 1)]
    );
    let view = &tickets[0];
    let receipt = view.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
    assert_eq!((receipt.purpose, receipt.delivery), (Some(Purpose::Ack), Some(OutboxState::Dead)));
    // The bounce and the auto-reply that answer our receipt are kept on its ticket.
    let inbound: Vec<&str> = view
        .messages
        .iter()
        .filter(|m| m.direction == Direction::In)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(inbound.len(), 3, "{inbound:?}");
    // The bounce says, on the ticket, that the answer did not arrive.
    assert!(
        inbound
            .iter()
            .any(|t| t.to_lowercase().contains("jawaban tidak terkirim (alamat email ditolak)")),
        "{inbound:?}"
    );
    // The test's store is fresh: the receipt is its only outbox row.
    let failed = env.store.outbox_row(1).await.unwrap().unwrap();
    assert_eq!(failed.receipt, Some(aduan_store::ReceiptStatus::Failed));
    assert!(failed.last_error.is_some_and(|e| e.contains("bounced")));
    assert_eq!(view.summary.status, aduan_core::Status::New);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(peer.count("warga", &tag).await, 1, "something was sent to the resident");
    env.stop().await;
}

#[tokio::test]
async fn unreadable_mail_is_quarantined_and_counted() {
    let Some(peer) = MailPeer::from_env() else { return };
    let mut env = Env::start(&peer, "quar").await;
    let tag = env.tag.clone();
    peer.append("intake", &tag, b"\r\n\r\n").await;
    let (resident, intake) = (env.resident(), env.intake());
    peer.append(
        "intake",
        &tag,
        &plain_mail(&resident, &intake, "Sampah", &format!("q1.{tag}@w"), "Di pasar."),
    )
    .await;
    eventually("the quarantine", || async {
        (peer.count("intake", &format!("{tag}-quarantine")).await == 1).then_some(())
    })
    .await;
    env.wait_processed(1).await;
    assert_eq!(env.tickets().await.len(), 1);
    assert!(
        env.telemetry.render().contains("aduan_messages_quarantined_total{channel=\"email\"} 1"),
        "{}",
        env.telemetry.render()
    );
    env.stop().await;
}

#[tokio::test]
async fn the_checkpoint_is_honoured_and_a_new_uidvalidity_rescans() {
    let Some(peer) = MailPeer::from_env() else { return };
    let tag = unique_tag("ckpt");
    let (resident, intake) =
        (peer.address("warga", Some(&tag)), peer.address("intake", Some(&tag)));
    let mail = |n: u32| {
        plain_mail(&resident, &intake, &format!("Aduan {n}"), &format!("k{n}.{tag}@w"), "isi")
    };
    for n in 1..=3 {
        peer.append("intake", &tag, &mail(n)).await;
    }
    let mut s = peer.session("intake").await;
    let selected = s.select(&tag).await.unwrap();
    let validity = selected.uid_validity.unwrap();
    let uids = imap::uids_after(&mut s, 0).await.unwrap();
    let _ = s.logout().await;
    assert_eq!(uids.len(), 3);

    // A store that already read the first mail, and whose checkpoint is past it.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let key = aduan_email::checkpoint_key("intake@aduan.test", &tag);
    store
        .set_checkpoint(
            "email".into(),
            key.clone(),
            aduan_email::Checkpoint { uid_validity: validity, last_uid: uids[0] }.render(),
        )
        .await
        .unwrap();
    let config = Env::config(&peer, &tag, dir.path(), Officials::default());
    let connector: Arc<dyn Connector> = Arc::new(EmailConnector::new(config.clone()).unwrap());
    let shutdown = CancellationToken::new();
    let cx = ConnectorContext {
        store: store.clone(),
        telemetry: Arc::new(Telemetry::new()),
        blobs: aduan_connector::BlobStore::new(
            dir.path().join("attachments"),
            aduan_connector::StorageFloor::default(),
        ),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(aduan_connector::supervise(connector, cx.clone()));
    eventually("two mails read", || async {
        (peer.count("intake", &format!("{tag}-processed")).await == 2).then_some(())
    })
    .await;
    // The mail at the checkpoint stays where it is: it was read before.
    assert_eq!(peer.count("intake", &tag).await, 1);
    let after = store.checkpoint("email", &key).await.unwrap().unwrap();
    assert_eq!(after, format!("{validity}:{}", uids[2]));
    shutdown.cancel();
    task.await.unwrap();

    // The mailbox is recreated elsewhere (UIDVALIDITY differs): everything is read again,
    // and what the store already has is recognised by its Message-ID.
    store
        .set_checkpoint(
            "email".into(),
            key.clone(),
            format!("{}:{}", validity.wrapping_add(7), 10_000),
        )
        .await
        .unwrap();
    let mut s = peer.session("intake").await;
    s.select(format!("{tag}-processed")).await.unwrap();
    let back = imap::uids_after(&mut s, 0).await.unwrap();
    imap::move_to(&mut s, Capabilities { idle: false, r#move: true, uidplus: true }, &back, &tag)
        .await
        .unwrap();
    let _ = s.logout().await;
    let before = store
        .tickets(&TicketFilter { limit: 50, ..TicketFilter::default() })
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(before, 2);
    let shutdown = CancellationToken::new();
    let connector: Arc<dyn Connector> = Arc::new(EmailConnector::new(config).unwrap());
    let cx = ConnectorContext { shutdown: shutdown.clone(), ..cx };
    let task = tokio::spawn(aduan_connector::supervise(connector, cx));
    eventually("all three read", || async {
        (peer.count("intake", &format!("{tag}-processed")).await == 3
            && peer.count("intake", &tag).await == 0)
            .then_some(())
    })
    .await;
    let tickets =
        store.tickets(&TicketFilter { limit: 50, ..TicketFilter::default() }).await.unwrap();
    assert_eq!(tickets.items.len(), 3, "one ticket per mail, none twice");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn tls_and_starttls_connect_with_the_configured_ca_only() {
    let Some(peer) = MailPeer::from_env() else { return };
    let with_ca = imap::tls_connector(Some(&peer.ca)).unwrap();
    let public = imap::tls_connector(None).unwrap();
    let tls = ImapAccount {
        host: "127.0.0.1".into(),
        port: peer.imaps.port(),
        tls: ImapTls::Tls,
        ca_file: Some(peer.ca.clone()),
        ..peer.account("intake")
    };
    let starttls = ImapAccount { tls: ImapTls::StartTls, ..peer.account("intake") };
    for account in [&tls, &starttls] {
        let mut s = imap::connect(account, &with_ca)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", account.tls));
        assert!(imap::capabilities(&mut s).await.unwrap().idle);
        s.logout().await.unwrap();
        // A certificate the public roots don't vouch for is refused.
        assert!(imap::connect(account, &public).await.is_err(), "{:?}", account.tls);
    }

    // The whole connector over implicit TLS.
    let mut env = Env::start_with(&peer, "tls", Officials::default(), |c| EmailConfig {
        account: tls.clone(),
        ..c
    })
    .await;
    let (tag, resident, intake) = (env.tag.clone(), env.resident(), env.intake());
    peer.append(
        "intake",
        &tag,
        &plain_mail(&resident, &intake, "Banjir", &format!("t1.{tag}@w"), "Di Kalibagor."),
    )
    .await;
    env.wait_processed(1).await;
    assert_eq!(env.tickets().await.len(), 1);
    assert!(env.telemetry.render().contains("aduan_connector_up{channel=\"email\"} 1"));
    env.stop().await;
}

#[tokio::test]
async fn moving_without_the_move_extension_works_too() {
    let Some(peer) = MailPeer::from_env() else { return };
    let tag = unique_tag("mv");
    for (n, caps) in [
        (1, Capabilities { idle: true, r#move: false, uidplus: true }),
        (2, Capabilities { idle: true, r#move: false, uidplus: false }),
    ] {
        peer.append(
            "intake",
            &tag,
            &plain_mail("a@b.example", "c@d.example", "x", &format!("m{n}.{tag}@w"), "x"),
        )
        .await;
        let mut s = peer.session("intake").await;
        imap::ensure_mailbox(&mut s, &format!("{tag} selesai")).await.unwrap();
        s.select(&tag).await.unwrap();
        let uids = imap::uids_after(&mut s, 0).await.unwrap();
        assert_eq!(uids.len(), 1);
        imap::move_to(&mut s, caps, &uids, &format!("{tag} selesai")).await.unwrap();
        assert!(imap::uids_after(&mut s, 0).await.unwrap().is_empty());
        let _ = s.logout().await;
        assert_eq!(peer.count("intake", &format!("{tag} selesai")).await, n);
    }
}

fn outbox_item(id: i64, to: &str, purpose: Purpose) -> OutboxItem {
    OutboxItem {
        id,
        ticket: "ADU-7K3M9QXP".parse().unwrap(),
        channel: Channel::Email,
        recipient: Identity::email(to).unwrap(),
        text: "Terima kasih.".into(),
        purpose,
        attempts: 1,
        thread_refs: vec![],
    }
}

#[tokio::test]
async fn refused_recipients_fail_for_good_and_automatic_mail_is_limited() {
    let Some(peer) = MailPeer::from_env() else { return };
    let tag = unique_tag("send");
    let dir = tempfile::tempdir().unwrap();
    let connector =
        EmailConnector::new(Env::config(&peer, &tag, dir.path(), Officials::default())).unwrap();

    // Postfix refuses an unknown local user: 5xx, given up at once.
    let ghost =
        connector.send(&outbox_item(1, &format!("ghost.{tag}@aduan.test"), Purpose::Reply)).await;
    assert!(
        matches!(
            &ghost,
            Err(SendError::Undeliverable(aduan_core::UndeliverableReason::RecipientInvalid))
        ),
        "{ghost:?}"
    );
    assert!(!format!("{ghost:?}").contains("ghost"), "the reason names the address: {ghost:?}");

    // Receipts to one address are limited; a person's answers are not.
    let resident = peer.address("warga", Some(&tag));
    let mut sent = 0;
    for i in 0..7 {
        match connector.send(&outbox_item(10 + i, &resident, Purpose::Ack)).await {
            Ok(Some(id)) => {
                assert!(
                    id.starts_with("aduan.adu-7k3m9qxp.") && id.ends_with("@aduan.test"),
                    "{id}"
                );
                sent += 1;
            }
            Err(SendError::Permanent(reason)) => assert!(reason.contains("too many"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, 5);
    assert!(connector.send(&outbox_item(20, &resident, Purpose::Reply)).await.is_ok());
    peer.wait_for("warga", &tag, 6, WAIT).await;
}

#[tokio::test]
async fn an_official_of_another_opd_and_strangers_only_leave_notes() {
    let Some(peer) = MailPeer::from_env() else { return };
    let officials = Officials::new([("DLH", peer.address("kepala.dlh", None))]);
    let mut env = Env::start_with(&peer, "note", officials, |c| c).await;
    let (tag, intake, resident) = (env.tag.clone(), env.intake(), env.resident());
    peer.append(
        "intake",
        &tag,
        &plain_mail(&resident, &intake, "Jembatan retak", &format!("n1.{tag}@w"), "Di Sokaraja."),
    )
    .await;
    let code =
        eventually("the ticket", || async { env.tickets().await.first().map(|t| t.summary.code) })
            .await;
    env.store.assign(code, "DPU".into(), Actor::System, None).await.unwrap();
    let subject = format!("Re: [{code}] Aduan untuk DPU: Jembatan retak");
    let dlh = peer.address("kepala.dlh", None);
    peer.append(
        "intake",
        &tag,
        &plain_mail(&dlh, &intake, &subject, &format!("n2.{tag}@dlh"), "Bukan wewenang kami."),
    )
    .await;
    peer.append(
        "intake",
        &tag,
        &plain_mail(
            "staf@dpu.example",
            &intake,
            &subject,
            &format!("n3.{tag}@dpu"),
            "Saya teruskan ke kepala.",
        ),
    )
    .await;
    env.wait_processed(3).await;
    let view = env.store.ticket(code).await.unwrap().unwrap();
    assert!(view.summary.first_responded_at.is_none());
    let notes: Vec<&str> = view
        .messages
        .iter()
        .filter(|m| m.text.starts_with(aduan_email::official::NOTE_PREFIX))
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(notes.len(), 2, "{:?}", view.messages);
    // Only the receipt went out, to the resident.
    assert_eq!(view.messages.iter().filter(|m| m.direction == Direction::Out).count(), 1);
    // A later answer still goes to the resident, not to whoever wrote the notes.
    env.stop().await;
    let replied =
        env.store.reply(code, "Segera kami tangani.".into(), Actor::System).await.unwrap();
    let items = env
        .store
        .outbox_claim(vec![Channel::Email], 10, chrono::Duration::seconds(60))
        .await
        .unwrap();
    let item = items.iter().find(|i| i.id == replied.outbox_id).expect("the answer queued");
    assert_eq!(item.recipient, Identity::email(&resident).unwrap());
}

#[tokio::test]
async fn threading_headers_outrank_a_code_in_the_subject() {
    let Some(peer) = MailPeer::from_env() else { return };
    let mut env = Env::start(&peer, "order").await;
    let (tag, intake, resident) = (env.tag.clone(), env.intake(), env.resident());
    for n in 1..=2 {
        let mail =
            plain_mail(&resident, &intake, &format!("Aduan {n}"), &format!("o{n}.{tag}@w"), "isi");
        peer.append("intake", &tag, &mail).await;
    }
    let tickets = eventually("two tickets", || async {
        let t = env.tickets().await;
        (t.len() == 2).then_some(t)
    })
    .await;
    let code_of = |text: &str| {
        tickets
            .iter()
            .find(|t| t.messages[0].text.starts_with(text))
            .map(|t| t.summary.code)
            .unwrap()
    };
    let (first, second) = (code_of("Aduan 1"), code_of("Aduan 2"));
    // Answers the first mail, but its subject names the second ticket.
    let reply = format!(
        "From: {resident}\r\nTo: {intake}\r\nSubject: Re: [{second}] Aduan\r\nMessage-ID: <o3.{tag}@w>\r\n\
         In-Reply-To: <o1.{tag}@w>\r\n\r\nTambahan untuk aduan pertama.\r\n"
    );
    peer.append("intake", &tag, reply.as_bytes()).await;
    // Only the subject names a ticket: that one.
    let tagged = format!(
        "From: {resident}\r\nTo: {intake}\r\nSubject: Re: [{second}] Aduan\r\nMessage-ID: <o4.{tag}@w>\r\n\r\nTambahan untuk aduan kedua.\r\n"
    );
    peer.append("intake", &tag, tagged.as_bytes()).await;
    env.wait_processed(4).await;
    for (code, text) in
        [(first, "Tambahan untuk aduan pertama."), (second, "Tambahan untuk aduan kedua.")]
    {
        let view = env.store.ticket(code).await.unwrap().unwrap();
        let inbound: Vec<&str> = view
            .messages
            .iter()
            .filter(|m| m.direction == Direction::In)
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(inbound.len(), 2, "{code}: {inbound:?}");
        assert_eq!(inbound[1], text, "{code}");
    }
    env.stop().await;
}

/// Issue 21.3: notifications to officials are no auto-replies to residents. Twenty
/// dispositions to one OPD's official within a minute all go out (the RFC 3834 limit gave
/// the sixth up for good).
#[tokio::test]
async fn twenty_dispositions_to_one_official_are_all_delivered() {
    let Some(peer) = MailPeer::from_env() else { return };
    let tag = unique_tag("busy");
    let dir = tempfile::tempdir().unwrap();
    let connector =
        EmailConnector::new(Env::config(&peer, &tag, dir.path(), Officials::default())).unwrap();
    let official = peer.address("kepala.dpu", Some(&tag));
    for i in 0..20 {
        let purpose = if i % 10 == 9 { Purpose::Warning } else { Purpose::Disposition };
        let sent = connector.send(&outbox_item(100 + i, &official, purpose)).await;
        assert!(matches!(sent, Ok(Some(_))), "notification {i}: {sent:?}");
    }
    assert_eq!(peer.wait_for("kepala.dpu", &tag, 20, WAIT).await.len(), 20);
}
