//! Privacy over HTTP, in memory: what the public Open311 list may show (issue 14.3), and
//! what officials read of a ticket — contacts and NIK masked in every text (21.7), a
//! *rahasia* reporter without name, address or contacts (14.8) — while operators, admins and
//! API keys read the ticket as stored.

use aduan_core::{
    Actor, Channel, Identity, InboundMessage, Location, Sender, Status, ThreadHints, TicketCode,
};
use aduan_store::{ReporterUpdate, RouteAction, RouteResult, Store};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;

mod common;
use common::*;

/// A GET with a session cookie, a bearer key, both or neither.
fn get_as(path: &str, cookie: Option<&str>, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

/// Signs in; returns the session cookie.
async fn session(app: &axum::Router, email: &str) -> String {
    login(app, email).await.cookie
}

fn sms(id: &str, phone: &str, text: &str, location: Option<Location>) -> InboundMessage {
    InboundMessage {
        channel: Channel::Sms,
        provider_id: id.into(),
        sender: Sender {
            identity: Some(Identity::phone(phone).unwrap()),
            display_name: Some("Siti Aminah".into()),
            contacts: vec![],
        },
        text: text.into(),
        attachments: vec![],
        location,
        received_at: chrono::Utc::now(),
        thread: ThreadHints::default(),
    }
}

const COMPLAINT: &str = "Jalan depan rumah saya di Desa Karangklesem berlubang sejak 04-12-2026, \
     RT 03 RW 05. Hubungi saya 0812-3456-7890 atau +62 857 1111 2222, email siti.aminah@example.id, \
     NIK 3302011234567890.";
const ANSWER: &str = "Nama: Siti Aminah, Alamat: Desa Karangklesem RT 03. RAHASIA";

/// A resident's complaint and their answer to the identity request on one ticket, disposed
/// to DPU; `rahasia`: they asked for it.
async fn complaint(store: &Store, id: &str, rahasia: bool) -> TicketCode {
    // One resident per ticket (a chat joins its sender's open ticket).
    let phone = if rahasia { "081234567890" } else { "081355556666" };
    let first = sms(&format!("{id}-1"), phone, COMPLAINT, None);
    let code = store.ingest(first).await.unwrap().ticket.unwrap();
    let again = store.ingest(sms(&format!("{id}-2"), phone, ANSWER, None)).await.unwrap();
    assert_eq!(again.ticket, Some(code), "the answer joins the ticket");
    let mut result = RouteResult::new(RouteAction::Triage { note: "uji".into() });
    result.reporter = Some(ReporterUpdate {
        name: Some("Siti Aminah".into()),
        address: Some("Desa Karangklesem RT 03".into()),
        confidential: rahasia,
    });
    store.route_done(code, result, chrono::Utc::now()).await.unwrap();
    let op = Actor::User("operator@kab.go.id".into());
    store.assign(code, "DPU".into(), op, Some("hubungi 081299998888".into())).await.unwrap();
    code
}

/// Nothing that identifies the resident, and the masks that say something was there.
fn assert_masked_for_officials(what: &str, text: &str, rahasia: bool) {
    for leak in [
        "0812-3456-7890",
        "3456-7890",
        "857 1111 2222",
        "siti.aminah@",
        "3302011234567890",
        "081299998888",
        "Siti Aminah",
        "+6281234567890",
    ] {
        assert!(!text.contains(leak), "{what} shows {leak:?} to an official");
    }
    for mask in ["[nomor disamarkan]", "[email disamarkan]", "[NIK disamarkan]"] {
        assert!(text.contains(mask), "{what} lacks {mask}");
    }
    // Ordinary numbers stay readable.
    assert!(text.contains("RT 03 RW 05") && text.contains("04-12-2026"), "{what}");
    if rahasia {
        // The desa of the complaint stays (it is where the road is); the reporter's own
        // address and name do not.
        for leak in ["Siti", "Aminah", "Desa Karangklesem RT 03", "S***", "+62812"] {
            assert!(!text.contains(leak), "{what} shows {leak:?} of a rahasia reporter");
        }
    }
}

#[tokio::test]
async fn officials_read_contacts_masked_and_rahasia_reporters_hidden() {
    let f = fx().await;
    let official = session(&f.app, "dpu@kab.go.id").await;
    let operator = session(&f.app, "operator@kab.go.id").await;
    for rahasia in [true, false] {
        let code = complaint(&f.store, if rahasia { "r" } else { "o" }, rahasia).await;
        let api =
            send(&f.app, get_as(&format!("/api/v1/tickets/{code}"), Some(&official), None)).await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.text);
        assert_masked_for_officials("the API", &api.text, rahasia);
        let v = api.json();
        let texts: Vec<&str> =
            v["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
        assert!(
            texts.contains(&"[jawaban identitas pelapor disamarkan]"),
            "the identity answer is hidden: {texts:?}"
        );
        if rahasia {
            assert_eq!(v["reporter"]["confidential"], true);
            assert_eq!(v["reporter"]["name"], Value::Null);
            assert_eq!(v["reporter"]["address"], Value::Null);
            assert_eq!(v["reporter"]["identities"], serde_json::json!([]));
        } else {
            assert_eq!(v["reporter"]["name"], "S*** A***");
            assert_eq!(v["reporter"]["address"], "Desa Karangklesem RT 03");
        }
        let page = send(&f.app, get_as(&format!("/tickets/{code}"), Some(&official), None)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_masked_for_officials("the ticket page", &page.text, rahasia);

        // Operators and admin keys read the ticket as stored.
        for (who, r) in [
            (
                "operator",
                send(&f.app, get_as(&format!("/api/v1/tickets/{code}"), Some(&operator), None))
                    .await,
            ),
            (
                "admin key",
                send(&f.app, get_as(&format!("/api/v1/tickets/{code}"), None, Some(&f.admin_key)))
                    .await,
            ),
            (
                "operator page",
                send(&f.app, get_as(&format!("/tickets/{code}"), Some(&operator), None)).await,
            ),
        ] {
            assert_eq!(r.status, StatusCode::OK);
            for verbatim in ["0812-3456-7890", "siti.aminah@example.id", "3302011234567890", ANSWER]
            {
                assert!(r.text.contains(verbatim), "{who} misses {verbatim:?}");
            }
            assert!(!r.text.contains("disamarkan"), "{who} reads a masked text");
        }
    }
}

fn geo_post(fields: &[(&str, &str)]) -> Request<Body> {
    form("/open311/v2/requests.json", "", fields)
}

#[tokio::test]
async fn the_open311_list_shows_only_public_requests_coarsely() {
    let f = fx().await;
    // A resident's SMS from home with their position: not a public request.
    let home = Location::new(-7.424_612, 109.239_612).unwrap();
    let private = f
        .store
        .ingest(sms("home-1", "081234567890", "Jalan rusak", Some(home)))
        .await
        .unwrap()
        .ticket
        .unwrap();
    let post = |desc: &'static str, name: &'static str, email: &'static str| {
        let key = f.intake_key.clone();
        let app = f.app.clone();
        async move {
            let r = send(
                &app,
                geo_post(&[
                    ("api_key", key.as_str()),
                    ("service_code", "jalan"),
                    ("lat", "-7.424612"),
                    ("long", "109.239612"),
                    ("description", desc),
                    ("first_name", name),
                    ("email", email),
                    ("address_string", "Jl. Melati 7 RT 03, Karangklesem"),
                ]),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()[0]["service_request_id"].as_str().unwrap().parse::<TicketCode>().unwrap()
        }
    };
    let public = post("Jalan berlubang, hubungi 081234567890", "Budi", "budi@example.id").await;
    let secret = post("Jalan berlubang dekat rumah saya", "Wati", "wati@example.id").await;
    let mut result = RouteResult::new(RouteAction::Triage { note: "uji".into() });
    result.reporter = Some(ReporterUpdate { confidential: true, ..ReporterUpdate::default() });
    f.store.route_done(secret, result, chrono::Utc::now()).await.unwrap();

    let list = send(&f.app, get_as("/open311/v2/requests.json", None, None)).await;
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![public.to_string()], "only the public Open311 request");
    let one = &list.json()[0];
    assert_eq!((one["lat"].as_f64(), one["long"].as_f64()), (Some(-7.425), Some(109.24)));
    for leak in ["424612", "239612", "Budi", "budi@", "0812", "Melati", "Karangklesem", "berlubang"]
    {
        assert!(!list.text.contains(leak), "the public list shows {leak:?}: {}", list.text);
    }
    assert_eq!(one["description"], Value::Null);
    assert_eq!(one["service_name"], "Jalan rusak");

    // One by one, or by id: the same rule; the others do not exist for the public.
    let r = send(&f.app, get_as(&format!("/open311/v2/requests/{public}.json"), None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()[0]["lat"].as_f64(), Some(-7.425));
    for hidden in [private, secret] {
        let r =
            send(&f.app, get_as(&format!("/open311/v2/requests/{hidden}.json"), None, None)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{hidden}: {}", r.text);
        assert!(!r.text.contains("424612"));
    }
    let r = send(
        &f.app,
        get_as(
            &format!("/open311/v2/requests.json?service_request_id={private},{secret},{public}"),
            None,
            None,
        ),
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.json()[0]["service_request_id"], public.to_string());

    // A public request merged into a resident's private ticket does not name that ticket.
    let op = Actor::User("operator@kab.go.id".into());
    f.store.merge(public, private, op).await.unwrap();
    let r = send(&f.app, get_as(&format!("/open311/v2/requests/{public}.json"), None, None)).await;
    assert_eq!(r.json()[0]["status"], "closed");
    assert!(!r.text.contains(&private.to_string()), "{}", r.text);
    assert_eq!(f.store.ticket(public).await.unwrap().unwrap().summary.status, Status::Merged);
}
