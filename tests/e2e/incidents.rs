//! One incident, many reports (issue 20), in the real daemon against the real peers of
//! `cargo xtask test`: three residents report the same blocked drain on Telegram (the fake
//! Bot API), by SMS (Kannel) and on the web form (with their email) → the routing worker
//! disposes the first to DPU and the other two join its incident by themselves
//! (`[incidents] auto_join = true`), DPU's official gets ONE mail, and one answer reaches
//! the three residents, each on their own channel.

use std::time::Duration;

use aduan_email::testkit::{MailPeer, unique_tag};
use aduan_sms::testkit::KannelPeer;
use aduan_tests::{Binary, Config, Daemon, toml_str};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    all_ticket_codes, client, eventually, post_message, registry_with_dpu_official, send, ticket,
    tickets,
};
use crate::email::email_config;
use crate::fake_bot::{FakeBot, TOKEN};

const WAIT: Duration = Duration::from_secs(40);

fn telegram_update(id: i64, user: i64, name: &str, text: &str) -> Value {
    json!({
        "update_id": id,
        "message": {
            "message_id": id,
            "from": {"id": user, "is_bot": false, "first_name": name},
            "chat": {"id": user, "first_name": name, "type": "private"},
            "date": 1_796_000_000,
            "text": text
        }
    })
}

/// The ticket whose first message is `text`, once it is there.
async fn ticket_with_text(
    http: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    text: &str,
) -> Value {
    eventually("the report as a ticket", daemon, WAIT, async || {
        let codes = all_ticket_codes(http, daemon, token).await;
        let all = tickets(http, daemon, token, &codes).await;
        all.into_iter().find(|t| t["messages"][0]["text"] == text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_residents_on_three_channels_one_incident_one_mail_three_answers() {
    let Some(bin) = Binary::locate() else { return };
    let Some(k) = KannelPeer::from_env() else { return };
    let Some(peer) = MailPeer::from_env() else { return };
    let tag = unique_tag("incident");
    let official = peer.address("kepala.dpu", Some(&tag));
    let resident_mail = peer.address("warga", Some(&tag));
    let (_site, registry_path) = registry_with_dpu_official(&official);
    let fake = FakeBot::start().await;
    let extra = format!(
        "[channels.telegram]\nenabled = true\ntoken = {}\napi_url = {}\npoll_timeout_secs = 1\n\
         [channels.kannel]\nenabled = true\nsecret = {}\nsendsms_url = {}\nusername = {}\n\
         password = {}\nfrom = \"1708\"\n",
        toml_str(TOKEN),
        toml_str(&fake.url),
        toml_str(&k.secret),
        toml_str(&k.sendsms_url),
        toml_str(&k.user),
        toml_str(&k.password)
    );
    let base = Config { extra_toml: extra, ..Config::sqlite() };
    let config = email_config(base, &peer, &tag)
        .env("ADUAN__SERVER__LISTEN", &k.mo_addr)
        .env("ADUAN__ROUTING__OPD_FILE", registry_path.display().to_string())
        .env("ADUAN__ROUTING__ASK_IDENTITY", "false")
        .env("ADUAN__ROUTING__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__POLL_MS", "100")
        .env("ADUAN__INCIDENTS__AUTO_JOIN", "true");
    let mut daemon = Daemon::start(&bin, config).await;
    let admin = daemon.apikey("incident-e2e", "admin");
    let intake = daemon.apikey("incident-web", "intake");
    let http = client();

    // 1. Telegram: the first report, disposed to DPU; the official hears of it.
    let first = "Saluran air di Desa Kedungrandu Kec. Patikraja tersumbat sampah, selokan meluap \
                 ke jalan";
    fake.push_updates([telegram_update(900_001, 5501, "Siti", first)]);
    let t1 = ticket_with_text(&http, &daemon, &admin, first).await;
    let c1 = t1["code"].as_str().unwrap().to_owned();
    let mails = peer.wait_for("kepala.dpu", &tag, 1, WAIT).await;
    assert_eq!(mails.len(), 1);

    // 2. SMS: the same drain in other words; it joins the incident by itself.
    let second = "selokan di Desa Kedungrandu Kec. Patikraja mampet sampah, saluran air meluap \
                  ke jalan";
    k.inject("+6281299990077", second);
    let t2 = ticket_with_text(&http, &daemon, &admin, second).await;
    let c2 = t2["code"].as_str().unwrap().to_owned();

    // 3. The web form, with the resident's email.
    let third = "Saluran air tersumbat sampah dan selokan meluap ke jalan, Desa Kedungrandu Kec. \
                 Patikraja";
    let body = json!({
        "external_id": format!("w-{tag}"),
        "text": third,
        "sender": {"name": "Budi", "email": resident_mail},
    });
    let r = post_message(&http, &daemon, &intake, &body).await.expect("POST /api/v1/messages");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let c3 = r.body["ticket"].as_str().expect("the web ticket's code").to_owned();

    // One incident of three reports.
    let incident = eventually("one incident of three reports", &daemon, WAIT, async || {
        let t = ticket(&http, &daemon, &admin, &c1).await;
        (t["incident"]["reports"] == 3).then(|| t["incident"]["id"].clone())
    })
    .await;
    for c in [&c2, &c3] {
        let t = ticket(&http, &daemon, &admin, c).await;
        assert_eq!(t["incident"]["id"], incident, "{t}");
    }
    let list = crate::common::get(
        &http,
        &daemon,
        &format!("/api/v1/tickets?incident={incident}"),
        Some(&admin),
    )
    .await;
    let listed: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [c1.as_str(), c2.as_str(), c3.as_str()], "{}", list.text);

    // 4. One answer on the incident: three residents, three channels.
    let answer = "Petugas DPU membersihkan saluran itu besok pagi.";
    let r = send(
        http.post(daemon.url(&format!("/api/v1/tickets/{c2}/reply")))
            .bearer_auth(&admin)
            .json(&json!({"text": answer})),
    )
    .await
    .expect("reply");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually("the answer on Telegram", &daemon, WAIT, async || {
        fake.sent().iter().any(|s| s.chat_id == 5501 && s.text.contains(answer)).then_some(())
    })
    .await;
    eventually("the answer by SMS", &daemon, WAIT, async || {
        k.received()
            .iter()
            .any(|m| m.to == "+6281299990077" && m.text.contains(answer))
            .then_some(())
    })
    .await;
    let inbox = peer.wait_for("warga", &tag, 1, WAIT).await;
    assert!(String::from_utf8_lossy(&inbox[0]).contains("membersihkan saluran"));

    // The official got one mail for the incident, not one per report.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(peer.count("kepala.dpu", &tag).await, 1, "one mail per incident");
    let t = ticket(&http, &daemon, &admin, &c3).await;
    assert_eq!(t["status"], "assigned", "{t}");
    let public = crate::common::get(&http, &daemon, &format!("/lacak/{c3}"), None).await;
    assert!(public.text.contains("dilaporkan oleh 3 warga"), "{}", public.text);
    daemon.terminate().await;
}
