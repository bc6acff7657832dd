//! The SMS channel in the real daemon, against the real Kannel of `cargo xtask test`
//! (`xtask/src/kannel.rs`): the daemon listens where smsbox sends inbound SMS
//! (`ADUAN_TEST_KANNEL_MO_ADDR`), `[channels.kannel]` in its config file; an SMS typed into
//! fakesmsc becomes a ticket, the receipt and an operator's answer reach fakesmsc.

use std::time::Duration;

use aduan_sms::testkit::KannelPeer;
use aduan_tests::{Binary, Config, Daemon, toml_str};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{all_ticket_codes, client, eventually, send, tickets};

const WAIT: Duration = Duration::from_secs(30);

/// The text of every SMS fakesmsc received for `to`.
fn received_for(k: &KannelPeer, to: &str) -> Vec<String> {
    k.received().into_iter().filter(|m| m.to == to).map(|m| m.text).collect()
}

#[tokio::test]
async fn an_sms_through_kannel_is_a_ticket_and_is_answered() {
    let Some(bin) = Binary::locate() else { return };
    let Some(k) = KannelPeer::from_env() else { return };
    let phone = "+6281299990001";
    let extra = format!(
        "[channels.kannel]\nenabled = true\nsecret = {}\nsendsms_url = {}\nusername = {}\n\
         password = {}\nfrom = \"1708\"\n",
        toml_str(&k.secret),
        toml_str(&k.sendsms_url),
        toml_str(&k.user),
        toml_str(&k.password)
    );
    let config =
        Config { extra_toml: extra, ..Config::sqlite() }.env("ADUAN__SERVER__LISTEN", &k.mo_addr);
    let daemon = Daemon::start(&bin, config).await;
    let admin = daemon.apikey("sms-e2e", "admin");
    let http = client();

    k.inject(phone, "Sampah menumpuk di Pasar Wage");

    let ticket = eventually("the SMS as a ticket", &daemon, WAIT, async || {
        let codes = all_ticket_codes(&http, &daemon, &admin).await;
        let all = tickets(&http, &daemon, &admin, &codes).await;
        all.into_iter().find(|t| t["messages"][0]["text"] == "Sampah menumpuk di Pasar Wage")
    })
    .await;
    let code = ticket["code"].as_str().expect("code").to_owned();
    assert_eq!(ticket["channel"], "sms");
    let ids = ticket["reporter"]["identities"].as_array().expect("identities");
    assert!(ids.iter().any(|i| i["kind"] == "phone" && i["value"] == phone), "{ids:?}");
    eventually("the receipt at the phone", &daemon, WAIT, async || {
        received_for(&k, phone).iter().any(|m| m.contains(&code)).then_some(())
    })
    .await;

    let r = send(
        http.post(daemon.url(&format!("/api/v1/tickets/{code}/reply")))
            .bearer_auth(&admin)
            .json(&json!({"text": "Petugas kebersihan sudah dijadwalkan besok pagi."})),
    )
    .await
    .expect("reply");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually("the answer at the phone", &daemon, WAIT, async || {
        received_for(&k, phone)
            .iter()
            .any(|m| m == "Petugas kebersihan sudah dijadwalkan besok pagi.")
            .then_some(())
    })
    .await;
}
