//! The Telegram channel in the real daemon: `kill -9` after a batch of updates is stored
//! but before the next `getUpdates` reaches the Bot API. The Bot API is the local fake of
//! the channel crate's tests.

use std::time::Duration;

use aduan_tests::{Binary, Config, Daemon, PgDatabase, toml_str};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{all_ticket_codes, client, eventually, get, metric, tickets};

const WAIT: Duration = Duration::from_secs(30);
use crate::fake_bot::{FakeBot, TOKEN};

fn fixture(name: &str) -> Value {
    let path = aduan_tests::workspace_root()
        .join("crates/aduan-telegram/tests/fixtures/telegram-teloxide-json")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect(name)
}

fn telegram_toml(fake: &FakeBot) -> String {
    format!(
        "[channels.telegram]\nenabled = true\ntoken = {}\napi_url = {}\npoll_timeout_secs = 1\n",
        toml_str(TOKEN),
        toml_str(&fake.url)
    )
}

/// `forget_checkpoint` puts the database in the state a kill between the batch's commit
/// and the offset write leaves behind.
async fn redelivery_scenario(bin: &Binary, config: Config, forget_checkpoint: impl AsyncFnOnce()) {
    let fake = FakeBot::start().await;
    let last = 892252935;
    fake.push_updates([
        fixture("update__update__message.json"),
        json!({"update_id": last, "message": fixture("object__message__show_caption_above_media.json")}),
    ]);
    // The next getUpdates would confirm the batch; it never reaches the Bot API.
    fake.hold_confirmations(true);
    let config = Config { extra_toml: telegram_toml(&fake), ..config };
    let mut daemon = Daemon::start(bin, config).await;
    let read = daemon.apikey("tg-dashboard", "read");
    let http = client();

    eventually("the batch stored and the next getUpdates sent", &daemon, WAIT, async || {
        let codes = all_ticket_codes(&http, &daemon, &read).await;
        (codes.len() == 2 && fake.held() >= 1).then_some(())
    })
    .await;
    daemon.kill9();
    forget_checkpoint().await;
    fake.hold_confirmations(false);
    let answered_before = fake.offsets().len();
    daemon.restart().await;

    eventually("the redelivered batch confirmed", &daemon, WAIT, async || {
        fake.offsets()[answered_before..].contains(&Some(last + 1)).then_some(())
    })
    .await;
    assert_eq!(
        fake.offsets()[answered_before],
        None,
        "without a checkpoint the poller asks for every unconfirmed update"
    );
    let codes = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(codes.len(), 2, "the redelivered updates opened tickets again");
    for t in tickets(&http, &daemon, &read, &codes).await {
        let messages = t["messages"].as_array().expect("messages");
        let inbound = messages.iter().filter(|m| m["direction"] == "in").count();
        let receipts = messages.iter().filter(|m| m["purpose"] == "ack").count();
        assert_eq!((inbound, receipts), (1, 1), "{t}");
    }
    let m = get(&http, &daemon, "/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(
        metric(&m.text, "aduan_messages_duplicate_total{channel=\"telegram\"}"),
        Some(2.0),
        "{}",
        m.text
    );
    assert_eq!(metric(&m.text, "aduan_connector_up{channel=\"telegram\"}"), Some(1.0));
    // Both residents got their receipt.
    eventually("the receipts", &daemon, WAIT, async || {
        let sent = fake.sent();
        [218485655, 1459074222]
            .iter()
            .all(|chat| sent.iter().any(|s| s.chat_id == *chat && s.text.contains("ADU-")))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_kill_9_before_the_next_get_updates_stores_nothing_twice() {
    let Some(bin) = Binary::locate() else { return };
    // The checkpoint is removed through a connection of our own while the daemon is dead.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("aduan.db");
    let config =
        Config { database_url: Some(format!("sqlite://{}", db.display())), ..Config::sqlite() };
    let forget = async || {
        let conn = rusqlite::Connection::open(&db).expect("open the dead daemon's database");
        conn.execute("DELETE FROM checkpoints WHERE connector = 'telegram'", [])
            .expect("delete the checkpoint");
    };
    redelivery_scenario(&bin, config, forget).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_kill_9_before_the_next_get_updates_stores_nothing_twice_on_postgres() {
    let Some(bin) = Binary::locate() else { return };
    let Some(db) = PgDatabase::create().await else { return };
    let url = db.url().to_owned();
    let forget = async || {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query("DELETE FROM checkpoints WHERE connector = 'telegram'")
            .execute(&mut conn)
            .await
            .expect("delete the checkpoint");
        let _ = conn.close().await;
    };
    redelivery_scenario(&bin, Config::postgres(db.url()), forget).await;
}
