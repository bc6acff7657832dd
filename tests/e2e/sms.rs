//! The SMS channel in the real daemon, against the real Kannel of `cargo xtask test`
//! (`xtask/src/kannel.rs`): the daemon listens where smsbox sends inbound SMS
//! (`ADUAN_TEST_KANNEL_MO_ADDR`), `[channels.kannel]` in its config file; an SMS typed into
//! fakesmsc becomes a ticket, the receipt and an operator's answer reach fakesmsc.

use std::io::Write;
use std::time::{Duration, Instant};

use aduan_tests::{Binary, Config, Daemon, toml_str};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{all_ticket_codes, client, send, tickets};

struct Kannel {
    sendsms_url: String,
    user: String,
    password: String,
    secret: String,
    mo_addr: String,
    fifo: String,
    out: String,
}

fn kannel() -> Option<Kannel> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(sendsms_url) = var("ADUAN_TEST_KANNEL_SENDSMS_URL") else {
        assert!(
            !aduan_tests::full_suite(),
            "ADUAN_TEST_FULL is set but there is no Kannel peer (ADUAN_TEST_KANNEL_SENDSMS_URL)"
        );
        eprintln!("skipped: no Kannel peer (run `cargo xtask test`)");
        return None;
    };
    let need = |k: &str| var(k).unwrap_or_else(|| panic!("{k} is not set"));
    Some(Kannel {
        sendsms_url,
        user: need("ADUAN_TEST_KANNEL_USER"),
        password: need("ADUAN_TEST_KANNEL_PASSWORD"),
        secret: need("ADUAN_TEST_KANNEL_SECRET"),
        mo_addr: need("ADUAN_TEST_KANNEL_MO_ADDR"),
        fifo: need("ADUAN_TEST_KANNEL_FAKESMSC_IN"),
        out: need("ADUAN_TEST_KANNEL_FAKESMSC_OUT"),
    })
}

/// The SMS fakesmsc received for `to`, as printed (`<FROM TO text MSG>`).
fn received_for(out: &str, to: &str) -> Vec<String> {
    let log = std::fs::read_to_string(out).unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split_once(": <").map(|(_, rest)| rest.trim_end_matches('>').to_owned()))
        .filter(|m| m.split(' ').nth(1) == Some(to))
        .collect()
}

async fn wait_until<T>(
    what: &str,
    daemon: &Daemon,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_sms_through_kannel_is_a_ticket_and_is_answered() {
    let Some(bin) = Binary::locate() else { return };
    let Some(k) = kannel() else { return };
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

    let mut fifo = std::fs::OpenOptions::new().write(true).open(&k.fifo).expect("fakesmsc FIFO");
    fifo.write_all(format!("{phone} 1708 text Sampah menumpuk di Pasar Wage\n").as_bytes())
        .unwrap();

    let ticket = wait_until("the SMS as a ticket", &daemon, async || {
        let codes = all_ticket_codes(&http, &daemon, &admin).await;
        let all = tickets(&http, &daemon, &admin, &codes).await;
        all.into_iter().find(|t| t["messages"][0]["text"] == "Sampah menumpuk di Pasar Wage")
    })
    .await;
    let code = ticket["code"].as_str().expect("code").to_owned();
    assert_eq!(ticket["channel"], "sms");
    let ids = ticket["reporter"]["identities"].as_array().expect("identities");
    assert!(ids.iter().any(|i| i["kind"] == "phone" && i["value"] == phone), "{ids:?}");
    wait_until("the receipt at the phone", &daemon, async || {
        received_for(&k.out, phone).iter().any(|m| m.contains(&code)).then_some(())
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
    wait_until("the answer at the phone", &daemon, async || {
        received_for(&k.out, phone)
            .iter()
            .any(|m| m.ends_with("text Petugas kebersihan sudah dijadwalkan besok pagi."))
            .then_some(())
    })
    .await;
}
