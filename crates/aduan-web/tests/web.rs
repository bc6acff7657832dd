//! The operator inbox and the public pages, in memory: sign-in, sessions, CSRF, roles on
//! pages and on the JSON API, escaping, the public form and tracking, rate limits.

use std::net::SocketAddr;

use aduan_core::{Channel, Identity, InboundMessage, Sender, Status, ThreadHints, TicketCode};
use aduan_store::{Role, Store};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

mod common;
use common::*;

const XSS_TEXT: &str = "<script>alert('x')</script> \"><img src=x onerror=alert(1)>";

fn bearer(method: &str, path: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_default()).unwrap()
}

fn resident_msg(id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        // Web reports are separate tickets even from one sender (chats would join).
        channel: Channel::Web,
        provider_id: id.into(),
        sender: Sender {
            identity: Some(Identity::phone("081234567890").unwrap()),
            display_name: Some("Siti Aminah".into()),
            contacts: vec![],
        },
        text: text.into(),
        attachments: vec![],
        location: None,
        received_at: chrono::Utc::now(),
        thread: ThreadHints::default(),
    }
}

async fn ticket(store: &Store, id: &str, text: &str, opd: Option<&str>) -> TicketCode {
    let code = store.ingest(resident_msg(id, text)).await.unwrap().ticket.unwrap();
    if let Some(o) = opd {
        let actor = aduan_core::Actor::User("operator@kab.go.id".into());
        store.assign(code, o.into(), actor, None).await.unwrap();
    }
    code
}

#[tokio::test]
async fn login_page_sets_strict_cookies_and_refuses_bad_credentials_generically() {
    let f = fx_with(|c| c.public_url = "https://aduan.example.go.id".into()).await;
    let r = send(&f.app, get("/login", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    for needle in
        ["type=\"email\" name=\"email\"", "type=\"password\" name=\"password\"", "type=\"submit\""]
    {
        assert!(r.text.contains(needle), "{needle} missing from the login form");
    }
    let c = &r.cookies()[0];
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"), "{c}");
    let vc = cookie_pair(c);
    let token = input_value(&r.text, "csrf");

    // No CSRF token: refused before the password is even looked at.
    let no_csrf = form("/login", &vc, &[("email", "admin@kab.go.id"), ("password", PASSWORD)]);
    let r = send(&f.app, no_csrf).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookies().iter().all(|c| !c.starts_with("aduan_session=")));

    let wrong = send(
        &f.app,
        form("/login", &vc, &[("csrf", &token), ("email", "admin@kab.go.id"), ("password", "x")]),
    )
    .await;
    let unknown = send(
        &f.app,
        form("/login", &vc, &[("csrf", &token), ("email", "siapa@kab.go.id"), ("password", "x")]),
    )
    .await;
    assert_eq!(
        (wrong.status, unknown.status),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert!(wrong.text.contains("Email atau kata sandi salah."));
    assert!(unknown.text.contains("Email atau kata sandi salah."));

    let ok = send(
        &f.app,
        form(
            "/login",
            &vc,
            &[("csrf", &token), ("email", "Admin@Kab.go.id"), ("password", PASSWORD)],
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let session = ok.cookies().into_iter().find(|c| c.starts_with("aduan_session=")).unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Secure")
    );
    assert!(session.contains("Max-Age=43200"));
}

#[tokio::test]
async fn cookies_are_not_secure_on_plain_http() {
    let f = fx().await;
    let r = send(&f.app, get("/login", None)).await;
    assert!(!r.cookies()[0].contains("Secure"));
}

#[tokio::test]
async fn login_is_rate_limited_per_account_even_for_the_right_password() {
    let f = fx_with(|c| c.login_attempts_per_minute = 3).await;
    let (vc, token) = visitor(&f.app, "/login").await;
    for _ in 0..3 {
        let r = send(
            &f.app,
            form(
                "/login",
                &vc,
                &[("csrf", &token), ("email", "operator@kab.go.id"), ("password", "salah")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(
        &f.app,
        form(
            "/login",
            &vc,
            &[("csrf", &token), ("email", "operator@kab.go.id"), ("password", PASSWORD)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.cookies().iter().all(|c| !c.starts_with("aduan_session=")));
    // Another account is not held up by it.
    login(&f.app, "admin@kab.go.id").await;
}

fn from(mut req: Request<Body>, last_octet: u8) -> Request<Body> {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, last_octet], 4000))));
    req
}

/// Issue 14.6: the sign-in form is capped (8 KiB body, 320-byte email) before any limiter
/// key is made, limiter keys are hashes bounded by the pairs seen, and a stranger failing
/// five times from one address does not lock the admin out of their own address.
#[tokio::test]
async fn login_limiter_memory_is_bounded_and_a_stranger_cannot_lock_the_admin_out() {
    let f = fx_with(|c| c.login_attempts_per_minute = 5).await;
    let (vc, token) = visitor(&f.app, "/login").await;
    assert_eq!(f.state.login_limiter_keys(), 0);

    // A 1 MiB email field: 413 before anything is kept.
    let huge = "a".repeat(1024 * 1024);
    let r =
        send(&f.app, form("/login", &vc, &[("csrf", &token), ("email", &huge), ("password", "x")]))
            .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &r.text[..200.min(r.text.len())]);
    assert!(!r.text.contains(&huge[..1000]));
    // Within the body cap but longer than an email can be: 422, nothing kept.
    let long = format!("{}@kab.go.id", "a".repeat(400));
    let r =
        send(&f.app, form("/login", &vc, &[("csrf", &token), ("email", &long), ("password", "x")]))
            .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(f.state.login_limiter_keys(), 0, "refused forms grew the limiter");

    // A stranger at 10.0.0.66 guesses the admin's password.
    let guess = || {
        from(
            form(
                "/login",
                &vc,
                &[("csrf", &token), ("email", "admin@kab.go.id"), ("password", "tebak")],
            ),
            66,
        )
    };
    for _ in 0..5 {
        assert_eq!(send(&f.app, guess()).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(send(&f.app, guess()).await.status, StatusCode::TOO_MANY_REQUESTS);
    // The admin, from their own address, still gets in.
    login(&f.app, "admin@kab.go.id").await;

    // One address cycling through many accounts stops at its address limit (4 × 5), and
    // the limiter holds a few keys per pair, not per byte sent.
    let mut refused = 0;
    for i in 0..60 {
        let email = format!("akun{i}@kab.go.id");
        let req = from(
            form("/login", &vc, &[("csrf", &token), ("email", &email), ("password", "x")]),
            77,
        );
        if send(&f.app, req).await.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 40, "the address limit did not hold");
    let keys = f.state.login_limiter_keys();
    assert!(keys <= 3 + 22 + 21, "{keys} limiter keys after 20 allowed attempts");
}

#[tokio::test]
async fn pages_need_a_session_and_logout_ends_it_with_audit() {
    let f = fx().await;
    let code = ticket(&f.store, "t1", "Jalan rusak", None).await;
    for path in ["/".to_string(), format!("/tickets/{code}")] {
        let r = send(&f.app, get(&path, None)).await;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"), "{path}");
        let r = send(&f.app, get(&path, Some("aduan_session=forged"))).await;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"), "{path}");
    }
    let u = login(&f.app, "operator@kab.go.id").await;
    // Logging out needs the CSRF token too.
    let r = send(&f.app, form("/logout", &u.cookie, &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&f.app, form("/logout", &u.cookie, &[("csrf", &u.csrf)])).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    assert!(r.cookies()[0].contains("Max-Age=0"));
    let r = send(&f.app, get("/", Some(&u.cookie))).await;
    assert_eq!(r.location(), "/login", "the old cookie is dead");

    let log = f.store.audit_log(10).await.unwrap();
    let got: Vec<String> = log.iter().map(|e| format!("{} {}", e.actor, e.action)).collect();
    assert_eq!(got, ["user:operator@kab.go.id logout", "user:operator@kab.go.id login"]);
}

#[tokio::test]
async fn the_operator_works_a_ticket_from_the_inbox() {
    let f = fx().await;
    let code = ticket(&f.store, "t1", "Jalan berlubang di Karangklesem", None).await;
    let other = ticket(&f.store, "t2", "Sampah menumpuk", None).await;
    let u = login(&f.app, "operator@kab.go.id").await;

    let inbox = send(&f.app, get("/", Some(&u.cookie))).await;
    assert!(inbox.text.contains(&code.to_string()) && inbox.text.contains(&other.to_string()));
    let filtered = send(&f.app, get("/?q=berlubang", Some(&u.cookie))).await;
    assert!(filtered.text.contains(&code.to_string()));
    assert!(!filtered.text.contains(&other.to_string()));

    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&u.cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Jalan berlubang di Karangklesem"));
    assert!(page.text.contains("Siti Aminah"), "operators see the reporter");
    assert!(page.text.contains("telepon: +6281234567890"), "in Indonesian: {}", page.text);

    let act = |action: &str, fields: Vec<(&'static str, String)>| {
        let mut all: Vec<(&str, String)> = vec![("csrf", u.csrf.clone())];
        all.extend(fields);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form(&format!("/tickets/{code}/{action}"), &u.cookie, &pairs)
    };
    // Without the token nothing happens.
    let r =
        send(&f.app, form(&format!("/tickets/{code}/assign"), &u.cookie, &[("opd", "DPU")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let wrong =
        form(&format!("/tickets/{code}/assign"), &u.cookie, &[("csrf", "nope"), ("opd", "DPU")]);
    assert_eq!(send(&f.app, wrong).await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.ticket(code).await.unwrap().unwrap().summary.opd, None);

    let r =
        send(&f.app, act("assign", vec![("opd", "DPU".into()), ("note", "jalan".into())])).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, format!("/tickets/{code}").as_str())
    );
    let r = send(&f.app, act("reply", vec![("text", "Sedang kami tangani.".into())])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &f.app,
        act("status", vec![("status", "in_progress".into()), ("note", "tim berangkat".into())]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(&f.app, act("assign", vec![("opd", "NOPE".into())])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&u.cookie))).await;
    assert!(page.text.contains("Sedang kami tangani."), "the reply is in the thread");
    assert!(page.text.contains("DPU — Dinas Pekerjaan Umum"));
    assert!(page.text.contains("Ditindaklanjuti"), "the status label of `texts`");
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::InProgress, Some("DPU")));
    assert!(v.events.iter().all(|e| e.kind == aduan_core::EventKind::Created
        || e.kind == aduan_core::EventKind::MessageReceived
        || e.actor.to_string() == "user:operator@kab.go.id"));

    // Asking who the resident is: the request goes out on their channel, the ticket waits.
    let asked = ticket(&f.store, "t9", "Tanpa nama", None).await;
    let r = send(
        &f.app,
        form(
            &format!("/tickets/{asked}/identity"),
            &u.cookie,
            &[("csrf", &u.csrf), ("text", "Siapa nama Anda?")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let v = f.store.ticket(asked).await.unwrap().unwrap();
    assert_eq!(v.summary.status, Status::AwaitingIdentity);
    assert!(
        v.messages.iter().any(|m| m.purpose == Some(aduan_core::Purpose::IdentityRequest)
            && m.text == "Siapa nama Anda?")
    );

    // Reject needs a reason; merge moves the other ticket into this one.
    let r = send(&f.app, act("reject", vec![])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        &f.app,
        form(
            &format!("/tickets/{other}/merge"),
            &u.cookie,
            &[("csrf", &u.csrf), ("into", &code.to_string())],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.ticket(other).await.unwrap().unwrap().summary.status, Status::Merged);
    let third = ticket(&f.store, "t3", "spam", None).await;
    let r = send(
        &f.app,
        form(
            &format!("/tickets/{third}/reject"),
            &u.cookie,
            &[("csrf", &u.csrf), ("reason", "bukan aduan")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.ticket(third).await.unwrap().unwrap().summary.status, Status::Rejected);
}

#[tokio::test]
async fn inbox_pages_with_a_cursor_that_keeps_the_filters() {
    let f = fx().await;
    for i in 0..5 {
        ticket(&f.store, &format!("p{i}"), "jalan", None).await;
    }
    let u = login(&f.app, "admin@kab.go.id").await;
    let r = send(&f.app, get("/?limit=2&channel=web", Some(&u.cookie))).await;
    let at = r.text.find("rel=\"next\"").map(|_| r.text.find("href=\"/?").unwrap()).unwrap();
    let href = &r.text[at + 6..];
    let href = href[..href.find('"').unwrap()].replace("&#38;", "&");
    assert!(href.contains("channel=web") && href.contains("cursor="), "{href}");
    let page2 = send(&f.app, get(&href, Some(&u.cookie))).await;
    assert_eq!(page2.status, StatusCode::OK);
    assert_eq!(page2.text.matches("<a href=\"/tickets/").count(), 2, "{href}\n{}", page2.text);
}

#[tokio::test]
async fn user_text_renders_inert() {
    let f = fx().await;
    let mut m = resident_msg("x1", XSS_TEXT);
    m.sender.display_name = Some("<script>alert(2)</script>".into());
    let code = f.store.ingest(m).await.unwrap().ticket.unwrap();
    let u = login(&f.app, "operator@kab.go.id").await;
    f.store
        .reply(code, XSS_TEXT.into(), aduan_core::Actor::User("operator@kab.go.id".into()))
        .await
        .unwrap();
    f.store
        .set_status(code, Status::InProgress, aduan_core::Actor::System, Some(XSS_TEXT.into()))
        .await
        .unwrap();
    for (path, cookie) in [
        (format!("/tickets/{code}"), Some(u.cookie.as_str())),
        (format!("/lacak/{code}"), None),
        (format!("/?q={}", "%3Cscript%3E"), Some(u.cookie.as_str())),
    ] {
        let r = send(&f.app, get(&path, cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.text.contains("<script>"), "{path} has a live script tag");
        assert!(!r.text.contains("<img"), "{path} has a live img tag");
    }
    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&u.cookie))).await;
    let shown = "&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#34;&#62;&#60;img src=x onerror=alert(1)&#62;";
    assert_eq!(page.text.matches(shown).count(), 3, "message, reply and note, escaped but shown");
    assert!(page.text.contains("&#60;script&#62;alert(2)&#60;/script&#62;"), "the name too");
}

#[tokio::test]
async fn officials_see_and_act_only_on_their_opd_with_the_reporter_masked() {
    let f = fx().await;
    let ours = ticket(&f.store, "o1", "Jalan rusak", Some("DPU")).await;
    let theirs = ticket(&f.store, "o2", "Puskesmas tutup", Some("DINKES")).await;
    let unassigned = ticket(&f.store, "o3", "Belum", None).await;
    let u = login(&f.app, "dpu@kab.go.id").await;

    let inbox = send(&f.app, get("/", Some(&u.cookie))).await;
    assert!(inbox.text.contains(&ours.to_string()));
    assert!(
        !inbox.text.contains(&theirs.to_string()) && !inbox.text.contains(&unassigned.to_string())
    );
    let r = send(&f.app, get("/?opd=DINKES", Some(&u.cookie))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    for code in [theirs, unassigned] {
        let r = send(&f.app, get(&format!("/tickets/{code}"), Some(&u.cookie))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = send(
            &f.app,
            form(&format!("/tickets/{code}/reply"), &u.cookie, &[("csrf", &u.csrf), ("text", "x")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let api = Request::get(format!("/api/v1/tickets/{code}"))
            .header(header::COOKIE, &u.cookie)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&f.app, api).await.status, StatusCode::FORBIDDEN);
    }
    let page = send(&f.app, get(&format!("/tickets/{ours}"), Some(&u.cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("Siti Aminah") && page.text.contains("S*** A***"));
    assert!(!page.text.contains("+6281234567890") && page.text.contains("+62812****890"));
    assert!(
        !page.text.contains("/assign\"") && !page.text.contains("/merge\""),
        "no operator actions"
    );

    // They answer and move the status of their own tickets, but neither dispose nor merge.
    let r = send(
        &f.app,
        form(&format!("/tickets/{ours}/reply"), &u.cookie, &[("csrf", &u.csrf), ("text", "Siap.")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &f.app,
        form(
            &format!("/tickets/{ours}/assign"),
            &u.cookie,
            &[("csrf", &u.csrf), ("opd", "DINKES")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The JSON API with the session: the same rules, masked reporter, CSRF header on POST.
    let api = |method: &str, path: String, csrf: Option<&str>, body: Value| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, &u.cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = csrf {
            b = b.header("x-csrf-token", t);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let list = send(&f.app, api("GET", "/api/v1/tickets".into(), None, Value::Null)).await;
    let items = list.json()["items"].clone();
    let codes: Vec<&str> =
        items.as_array().unwrap().iter().map(|t| t["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec![ours.to_string().as_str()]);
    let one = send(&f.app, api("GET", format!("/api/v1/tickets/{ours}"), None, Value::Null)).await;
    assert_eq!(one.json()["reporter"]["name"], "S*** A***");
    let r = send(
        &f.app,
        api("POST", format!("/api/v1/tickets/{ours}/status"), None, json!({"status": "resolved"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF header");
    let r = send(
        &f.app,
        api(
            "POST",
            format!("/api/v1/tickets/{ours}/status"),
            Some(&u.csrf),
            json!({"status": "resolved"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "resolved");
    let events = &r.json()["events"];
    assert!(events.as_array().unwrap().iter().any(|e| e["actor"] == "user:dpu@kab.go.id"));
}

/// Every API route and page against every kind of caller.
#[tokio::test]
async fn role_by_route_matrix() {
    let f = fx().await;
    let dpu = ticket(&f.store, "m1", "Jalan rusak", Some("DPU")).await;
    let admin = login(&f.app, "admin@kab.go.id").await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let official = login(&f.app, "dpu@kab.go.id").await;
    let stranger = login(&f.app, "dinkes@kab.go.id").await;

    #[derive(Clone, Copy)]
    enum Who<'a> {
        Anon,
        Key(&'a str),
        User(&'a User),
    }
    let callers: Vec<(&str, Who<'_>)> = vec![
        ("anon", Who::Anon),
        ("intake", Who::Key(&f.intake_key)),
        ("read", Who::Key(&f.read_key)),
        ("admin_key", Who::Key(&f.admin_key)),
        ("admin", Who::User(&admin)),
        ("operator", Who::User(&operator)),
        ("official", Who::User(&official)),
        ("other_official", Who::User(&stranger)),
    ];
    let t = dpu.to_string();
    // (method, path, body, expected status per caller in the order above). `{fresh}` is a
    // new ticket disposed to DPU for every request, so that one caller's action does not
    // change what the next one finds.
    let routes: Vec<(&str, &str, Value, [u16; 8])> = vec![
        ("GET", "/api/v1/tickets", Value::Null, [401, 403, 200, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/tickets/{t}", Value::Null, [401, 403, 200, 200, 200, 200, 200, 403]),
        (
            "POST",
            "/api/v1/tickets/{fresh}/reply",
            json!({"text": "ok"}),
            [401, 403, 403, 200, 200, 200, 200, 403],
        ),
        (
            "POST",
            "/api/v1/tickets/{fresh}/status",
            json!({"status": "in_progress"}),
            [401, 403, 403, 200, 200, 200, 200, 403],
        ),
        (
            "POST",
            "/api/v1/tickets/{fresh}/assign",
            json!({"opd": "DINKES"}),
            [401, 403, 403, 200, 200, 200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/tickets/{fresh}/merge",
            json!({"into": "{fresh2}"}),
            [401, 403, 403, 200, 200, 200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/messages",
            json!({"external_id": "m", "text": "x"}),
            [401, 201, 403, 201, 401, 401, 401, 401],
        ),
        ("GET", "/api/v1/public/tickets/{t}", Value::Null, [200; 8]),
        ("GET", "/", Value::Null, [303, 303, 303, 303, 200, 200, 200, 200]),
        ("GET", "/tickets/{t}", Value::Null, [303, 303, 303, 303, 200, 200, 200, 403]),
        ("POST", "/tickets/{fresh}/reply", Value::Null, [303, 303, 303, 303, 303, 303, 303, 403]),
        ("GET", "/lacak/{t}", Value::Null, [200; 8]),
        ("GET", "/dashboard", Value::Null, [303, 303, 303, 303, 200, 200, 200, 200]),
        ("GET", "/users", Value::Null, [303, 303, 303, 303, 200, 403, 403, 403]),
        ("GET", "/open311/v2/services.json", Value::Null, [200; 8]),
        ("GET", "/open311/v2/requests.json", Value::Null, [200; 8]),
        // `t` came in on the web form: not a public Open311 request.
        ("GET", "/open311/v2/requests/{t}.json", Value::Null, [404; 8]),
        ("GET", "/api/v1/stats?group_by=channel", Value::Null, [200; 8]),
        ("GET", "/lapor", Value::Null, [200; 8]),
        ("GET", "/login", Value::Null, [200; 8]),
        ("GET", "/healthz", Value::Null, [200; 8]),
        ("GET", "/api/openapi.json", Value::Null, [200; 8]),
    ];
    let mut n = 0;
    let mut failures = Vec::new();
    for (method, path, body, expected) in &routes {
        for (i, (name, who)) in callers.iter().enumerate() {
            let mut fresh = || {
                n += 1;
                let store = f.store.clone();
                let id = format!("fresh{n}");
                async move { ticket(&store, &id, "x", Some("DPU")).await.to_string() }
            };
            let mut path = path.replace("{t}", &t);
            let mut body = body.to_string();
            if path.contains("{fresh}") {
                path = path.replace("{fresh}", &fresh().await);
            }
            if body.contains("{fresh2}") {
                body = body.replace("{fresh2}", &fresh().await);
            }
            let mut b = Request::builder().method(*method).uri(path.as_str());
            match who {
                Who::Anon => {}
                Who::Key(k) => b = b.header(header::AUTHORIZATION, format!("Bearer {k}")),
                Who::User(u) => {
                    b = b.header(header::COOKIE, &u.cookie).header("x-csrf-token", &u.csrf)
                }
            }
            let req = if path.starts_with("/tickets/") && *method == "POST" {
                let csrf = match who {
                    Who::User(u) => u.csrf.clone(),
                    _ => String::new(),
                };
                let form = format!("csrf={csrf}&text=ok");
                b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap()
            } else if body == "null" {
                b.body(Body::empty()).unwrap()
            } else {
                b.header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap()
            };
            let got = send(&f.app, req).await.status.as_u16();
            if got != expected[i] {
                failures
                    .push(format!("{method} {path} as {name}: {got}, expected {}", expected[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_public_form_files_a_web_ticket_once_and_tracking_shows_nothing_personal() {
    let f = fx().await;
    let (vc, token) = visitor(&f.app, "/lapor").await;
    let page = send(&f.app, get("/lapor", Some(&vc))).await;
    let nonce = input_value(&page.text, "nonce");
    let multipart = |csrf: &str, photo: bool| {
        let b = "XyZbOuNdArY";
        let mut body = String::new();
        for (k, v) in [
            ("csrf", csrf),
            ("nonce", nonce.as_str()),
            ("name", "Siti Aminah"),
            ("contact", "0812-3456-7890"),
            ("text", "Lampu jalan mati di Jl. Gatot Subroto"),
            ("lat", "-7.4246"),
            ("lon", "109.2396"),
        ] {
            body.push_str(&format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        if photo {
            body.push_str(&format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"../foto.jpg\"\r\nContent-Type: image/gif\r\n\r\nGIF89a01\r\n"
            ));
        }
        body.push_str(&format!("--{b}--\r\n"));
        Request::post("/lapor")
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
            .header(header::COOKIE, &vc)
            .body(Body::from(body))
            .unwrap()
    };
    let r = send(&f.app, multipart("forged", true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.tickets(&Default::default()).await.unwrap().items.len(), 0);

    let r = send(&f.app, multipart(&token, true)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let at = r.text.find("id=\"code\">").unwrap() + 10;
    let code: TicketCode = r.text[at..at + 12].parse().unwrap();
    // Sent twice (a double tap): still one ticket.
    let again = send(&f.app, multipart(&token, true)).await;
    assert!(again.text.contains(&code.to_string()));
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.channel, Channel::Web);
    assert_eq!(v.messages.len(), 1);
    assert_eq!(v.messages[0].attachments[0].filename.as_deref(), Some("foto.jpg"));
    assert_eq!(v.messages[0].attachments[0].size, 8);
    assert_eq!(v.reporter.as_ref().unwrap().identities[0].value, "+6281234567890");
    assert!(v.summary.location.is_some());

    f.store.assign(code, "DPU".into(), aduan_core::Actor::System, None).await.unwrap();
    f.store
        .reply(code, "Lampu sudah diganti.".into(), aduan_core::Actor::User("op@kab.go.id".into()))
        .await
        .unwrap();

    let r = send(
        &f.app,
        get(&format!("/api/v1/public/tickets/{}", code.to_string().to_lowercase()), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(
        (j["code"].as_str(), j["status"].as_str(), j["opd"].as_str()),
        (Some(code.to_string().as_str()), Some("assigned"), Some("DPU"))
    );
    assert_eq!(j["opd_name"], "Dinas Pekerjaan Umum");
    assert_eq!(j["answers"][0]["text"], "Lampu sudah diganti.");
    assert!(j["first_responded_at"].is_string());
    let html = send(&f.app, get(&format!("/lacak/{code}"), None)).await;
    assert!(
        html.text.contains("Lampu sudah diganti.") && html.text.contains("Dinas Pekerjaan Umum")
    );
    for personal in ["Siti", "0812", "6281234567890", "Lampu jalan mati", "op@kab.go.id", "-7.42"] {
        assert!(!r.text.contains(personal), "{personal} in the public JSON");
        assert!(!html.text.contains(personal), "{personal} on the tracking page");
    }
    let r = send(&f.app, get("/api/v1/public/tickets/ADU-00000000", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(&f.app, get("/lacak/bukan-kode", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(&f.app, get(&format!("/lacak?code={code}"), None)).await;
    assert_eq!(r.location(), format!("/lacak/{code}"));
}

#[tokio::test]
async fn public_pages_are_rate_limited_per_client() {
    let f = fx_with(|c| c.public_requests_per_minute = 2).await;
    let code = ticket(&f.store, "r1", "x", None).await;
    let path = format!("/api/v1/public/tickets/{code}");
    assert_eq!(send(&f.app, get(&path, None)).await.status, StatusCode::OK);
    assert_eq!(send(&f.app, get(&format!("/lacak/{code}"), None)).await.status, StatusCode::OK);
    assert_eq!(send(&f.app, get(&path, None)).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not held up.
    let mut req = get(&path, None);
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 4000))));
    assert_eq!(send(&f.app, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer_keys_keep_working_on_the_ticket_api() {
    let f = fx().await;
    let code = ticket(&f.store, "k1", "x", None).await;
    let r = send(
        &f.app,
        bearer(
            "POST",
            &format!("/api/v1/tickets/{code}/assign"),
            &f.admin_key,
            Some(json!({"opd": "DPU"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert!(v.events.iter().any(|e| e.actor.to_string() == "apikey:ops"));
    let r = send(&f.app, bearer("GET", "/api/v1/tickets?category=jalan", &f.read_key, None)).await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn stats_are_open_data_in_json_and_csv_and_the_dashboard_draws_them() {
    let f = fx().await;
    let a = ticket(&f.store, "s1", "Jalan rusak", Some("DPU")).await;
    ticket(&f.store, "s2", "Jalan rusak lagi", Some("DPU")).await;
    ticket(&f.store, "s3", "Puskesmas", None).await;
    f.store.reply(a, "Segera.".into(), aduan_core::Actor::System).await.unwrap();

    let r = send(&f.app, get("/api/v1/stats?group_by=opd", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let j = r.json();
    assert_eq!(j["group_by"], "opd");
    let rows: Vec<(Value, i64, i64)> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].clone(),
                r["total"].as_i64().unwrap(),
                r["responded_on_time"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, vec![(Value::Null, 1, 0), (json!("DPU"), 2, 1)]);
    assert_eq!(j["rows"][1]["compliance"], 1.0);
    for personal in ["Siti", "Jalan", "+62", "ADU-"] {
        assert!(!r.text.contains(personal), "{personal} in open data");
    }

    let r =
        send(&f.app, get("/api/v1/stats?group_by=channel&format=csv&from=2020-01-01", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        r.text,
        "channel,total,open,resolved,rejected,overdue,responded_on_time,responded_late,compliance,closed\r\nweb,3,3,0,0,0,1,0,1.0000,0\r\n"
    );
    let r = send(&f.app, get("/api/v1/stats?group_by=day&to=2020-01-01", None)).await;
    assert_eq!(r.json()["rows"], json!([]));
    for bad in ["group_by=rt", "from=kemarin", "format=xml"] {
        let r = send(&f.app, get(&format!("/api/v1/stats?{bad}"), None)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    let u = login(&f.app, "operator@kab.go.id").await;
    let r = send(&f.app, get("/dashboard", Some(&u.cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    // Five counts charts, two of satisfaction (issue 17), one of routing (issue 18).
    assert_eq!(r.text.matches("<svg").count(), 8);
    assert!(r.text.contains("Kepatuhan tenggat per OPD") && r.text.contains(">DPU<"));
    // No resident was asked yet: that chart says so, with no legend and no empty table.
    assert!(r.text.contains("Belum ada data.") && !r.text.contains("sudah beres"));
    assert_eq!(r.text.matches("<table").count(), 7);
    assert!(r.text.contains("(belum tercatat)"), "tickets the router placed in no kecamatan");
}

#[tokio::test]
async fn admins_manage_users_with_audit_and_others_may_not() {
    let f = fx().await;
    let admin = login(&f.app, "admin@kab.go.id").await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let r = send(&f.app, get("/users", Some(&operator.cookie))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let add = |u: &User, csrf: &str, email: &str| {
        form(
            "/users",
            &u.cookie,
            &[
                ("csrf", csrf),
                ("email", email),
                ("role", "official"),
                ("opd", "DPU"),
                ("password", "sandi-baru-panjang"),
            ],
        )
    };
    let r = send(&f.app, add(&operator, &operator.csrf, "x@kab.go.id")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&f.app, add(&admin, "forged", "x@kab.go.id")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&f.app, add(&admin, &admin.csrf, "baru@kab.go.id")).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/users"), "{}", r.text);
    let page = send(&f.app, get("/users", Some(&admin.cookie))).await;
    assert!(page.text.contains("baru@kab.go.id") && page.text.contains("user_added"));
    let (user, _) = f.store.user_for_login("baru@kab.go.id").await.unwrap().unwrap();
    assert_eq!((user.role, user.opd.as_deref()), (Role::Official, Some("DPU")));

    // The new official signs in with that password; disabling ends the session.
    let (vc, token) = visitor(&f.app, "/login").await;
    let r = send(
        &f.app,
        form(
            "/login",
            &vc,
            &[("csrf", &token), ("email", "baru@kab.go.id"), ("password", "sandi-baru-panjang")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie =
        cookie_pair(&r.cookies().into_iter().find(|c| c.starts_with("aduan_session=")).unwrap());
    let path = format!("/users/{}/disable", user.id);
    let r = send(&f.app, form(&path, &admin.cookie, &[("csrf", &admin.csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(send(&f.app, get("/", Some(&cookie))).await.location(), "/login");
    let actions: Vec<String> = f
        .store
        .audit_log(3)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e.actor, e.action))
        .collect();
    assert_eq!(actions[0], "user:admin@kab.go.id user_disabled");
    // An admin can't lock themselves out.
    let (me, _) = f.store.user_for_login("admin@kab.go.id").await.unwrap().unwrap();
    let r = send(
        &f.app,
        form(&format!("/users/{}/disable", me.id), &admin.cookie, &[("csrf", &admin.csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

fn geo_post(fields: &[(&str, &str)]) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    Request::post("/open311/v2/requests.json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn open311_georeport_v2_shapes() {
    let f = fx().await;
    let r = send(&f.app, get("/open311/v2/services.json", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let services = r.json();
    assert_eq!(services[0]["service_code"], "jalan");
    for k in ["service_name", "description", "metadata", "type", "keywords", "group"] {
        assert!(services[0].get(k).is_some(), "services.json lacks {k}");
    }
    assert_eq!(services[0]["metadata"], false);
    assert_eq!(services[0]["type"], "realtime");
    let r = send(&f.app, get("/open311/v2/services/jalan.json", None)).await;
    assert_eq!(r.json(), json!({"service_code": "jalan", "attributes": []}));
    let r = send(&f.app, get("/open311/v2/services/nope.json", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()[0]["code"], 404);
    assert!(r.json()[0]["description"].is_string());

    // POST needs a valid api_key of scope intake (403), a known service (404), a location (400).
    let base = [("service_code", "jalan"), ("lat", "-7.4246"), ("long", "109.2396")];
    let mut no_key: Vec<(&str, &str)> = base.to_vec();
    no_key.push(("description", "Jalan berlubang"));
    let r = send(&f.app, geo_post(&no_key)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()[0]["code"], 403);
    let mut read_key: Vec<(&str, &str)> = base.to_vec();
    read_key.push(("api_key", f.read_key.as_str()));
    let r = send(&f.app, geo_post(&read_key)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let key = f.intake_key.clone();
    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "nope"),
            ("lat", "1"),
            ("long", "1"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(&f.app, geo_post(&[("api_key", key.as_str()), ("service_code", "jalan")])).await;
    assert_eq!((r.status, r.json()[0]["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(400)));
    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "jalan"),
            ("lat", "200"),
            ("long", "1"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "jalan"),
            ("lat", "-7.4246"),
            ("long", "109.2396"),
            ("description", "Jalan berlubang dekat pasar"),
            ("first_name", "Budi"),
            ("email", "budi@example.id"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let created = r.json();
    let id = created[0]["service_request_id"].as_str().unwrap().to_owned();
    assert!(created[0].get("service_notice").is_some() && created[0].get("account_id").is_some());
    let code: TicketCode = id.parse().unwrap();
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.channel, Channel::Open311);
    assert_eq!(v.summary.category.as_deref(), Some("jalan"));
    assert_eq!(v.reporter.unwrap().identities[0].value, "budi@example.id");

    let r = send(&f.app, get(&format!("/open311/v2/requests/{id}.json"), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let one = &r.json()[0];
    for k in [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ] {
        assert!(one.get(k).is_some(), "request lacks {k}");
    }
    assert_eq!(
        (one["status"].as_str(), one["service_code"].as_str()),
        (Some("open"), Some("jalan"))
    );
    assert_eq!(one["lat"], -7.425, "coordinates rounded to about 100 m");
    assert!(!r.text.contains("Budi") && !r.text.contains("budi@"), "nothing personal");
    let r = send(&f.app, get("/open311/v2/requests/ADU-00000000.json", None)).await;
    assert_eq!((r.status, r.json()[0]["code"].as_u64()), (StatusCode::NOT_FOUND, Some(404)));

    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "jalan"),
            ("address_string", "Pasar Wage"),
        ]),
    )
    .await;
    let other: TicketCode = r.json()[0]["service_request_id"].as_str().unwrap().parse().unwrap();
    f.store
        .set_status(other, Status::Rejected, aduan_core::Actor::System, Some("spam".into()))
        .await
        .unwrap();
    let ids = |r: &Resp| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["service_request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = send(&f.app, get("/open311/v2/requests.json", None)).await;
    assert_eq!(ids(&all), vec![other.to_string(), id.clone()]);
    let open = send(&f.app, get("/open311/v2/requests.json?status=open", None)).await;
    assert_eq!(ids(&open), vec![id.clone()]);
    let closed = send(&f.app, get("/open311/v2/requests.json?status=closed", None)).await;
    assert_eq!(ids(&closed), vec![other.to_string()]);
    let by_service = send(&f.app, get("/open311/v2/requests.json?service_code=jalan", None)).await;
    assert_eq!(ids(&by_service), vec![other.to_string(), id.clone()]);
    let no_service = send(&f.app, get("/open311/v2/requests.json?service_code=nope", None)).await;
    assert_eq!(no_service.json(), json!([]));
    let listed = send(
        &f.app,
        get(&format!("/open311/v2/requests.json?service_request_id={id},{other}"), None),
    )
    .await;
    assert_eq!(ids(&listed).len(), 2);
    let future =
        send(&f.app, get("/open311/v2/requests.json?start_date=2999-01-01T00:00:00Z", None)).await;
    assert_eq!(future.json(), json!([]));
    let r = send(&f.app, get("/open311/v2/requests.json?start_date=kemarin", None)).await;
    assert_eq!((r.status, r.json()[0]["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(400)));
}

/// SMS pumping (issue 14.7): nobody verified a contact phone typed into the form or sent
/// through Open311, so only numbers of the configured country are taken.
#[tokio::test]
async fn foreign_contact_phones_are_refused_on_the_form_and_on_open311() {
    let f = fx().await;
    let (vc, token) = visitor(&f.app, "/lapor").await;
    let page = send(&f.app, get("/lapor", Some(&vc))).await;
    let nonce = input_value(&page.text, "nonce");
    let b = "XyZbOuNdArY";
    let mut body = String::new();
    for (k, v) in [
        ("csrf", token.as_str()),
        ("nonce", nonce.as_str()),
        ("contact", "+44 7700 900123"),
        ("text", "Lampu jalan mati"),
    ] {
        body.push_str(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{b}--\r\n"));
    let req = Request::post("/lapor")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
        .header(header::COOKIE, &vc)
        .body(Body::from(body))
        .unwrap();
    let r = send(&f.app, req).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Nomor HP harus nomor dalam negeri"), "{}", r.text);

    let key = f.intake_key.clone();
    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "jalan"),
            ("lat", "-7.4246"),
            ("long", "109.2396"),
            ("description", "Jalan berlubang"),
            ("phone", "+447700900123"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(f.store.tickets(&Default::default()).await.unwrap().items.len(), 0);
    // A number of the country is taken.
    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "jalan"),
            ("lat", "-7.4246"),
            ("long", "109.2396"),
            ("description", "Jalan berlubang"),
            ("phone", "0812 3456 7890"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A `/lapor` post with `photo` as the photo field.
async fn lapor_with_photo(f: &Fx, nonce: &str, ct: &str, photo: &[u8], ip: u8) -> Resp {
    let (vc, token) = visitor(&f.app, "/lapor").await;
    let b = "XyZbOuNdArY";
    let mut body = Vec::new();
    for (k, v) in [("csrf", token.as_str()), ("nonce", nonce), ("text", "Jalan berlubang")] {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"f.jpg\"\r\n\
             Content-Type: {ct}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let req = Request::post("/lapor")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::COOKIE, &vc)
        .body(Body::from(body))
        .unwrap();
    send(&f.app, from(req, ip)).await
}

fn jpeg(size: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum()
}

/// Issue 14.10: what is not an image (by its bytes) is refused; a client address spends
/// an upload budget; below the free-space floor the form answers 507 and writes nothing.
#[tokio::test]
async fn public_photos_are_images_within_a_budget_and_above_the_floor() {
    let f = fx_with(|c| c.upload_bytes_per_hour = 300 * 1024).await;
    let att = f.dir.path().join("att");
    let r = lapor_with_photo(&f, "n1", "image/jpeg", b"<html><script>x</script>", 1).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = lapor_with_photo(&f, "n2", "image/svg+xml", b"<svg onload=alert(1)/>", 1).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    let r = lapor_with_photo(&f, "n3", "image/png", &jpeg(100, 1), 1).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a JPEG declared as PNG");
    assert_eq!(files_under(&att), 0);
    assert_eq!(f.store.tickets(&Default::default()).await.unwrap().items.len(), 0);

    let mut statuses = Vec::new();
    for i in 0..4u8 {
        let r = lapor_with_photo(&f, &format!("b{i}"), "image/jpeg", &jpeg(100_000, i), 2).await;
        statuses.push(r.status);
    }
    assert_eq!(statuses[..2], [StatusCode::OK, StatusCode::OK], "{statuses:?}");
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Another address has its own budget.
    let r = lapor_with_photo(&f, "c1", "image/jpeg", &jpeg(100_000, 9), 3).await;
    assert_eq!(r.status, StatusCode::OK);

    let f = fx_with(|c| {
        c.storage_floor = aduan_web::StorageFloor { min_free_bytes: u64::MAX / 4, max_percent: 100 }
    })
    .await;
    let r = lapor_with_photo(&f, "d1", "image/jpeg", &jpeg(1000, 1), 1).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text);
    assert_eq!(files_under(&f.dir.path().join("att")), 0);
    assert_eq!(f.store.tickets(&Default::default()).await.unwrap().items.len(), 0);
}

/// Issue 14.11 / 21.9: every answer carries nosniff and Referrer-Policy, pages a CSP with
/// nothing inline (and no inline style or script in them), personal JSON `no-store`.
#[tokio::test]
async fn pages_carry_a_strict_csp_and_json_is_not_cached() {
    let f = fx().await;
    let code = ticket(&f.store, "h1", "Jalan rusak", None).await;
    let u = login(&f.app, "admin@kab.go.id").await;
    for path in
        ["/login", "/lapor", "/lacak", "/", "/dashboard", "/users", &format!("/tickets/{code}")]
    {
        let cookie =
            (path != "/login" && path != "/lapor" && path != "/lacak").then_some(u.cookie.as_str());
        let r = send(&f.app, get(path, cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let csp = r.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers[header::REFERRER_POLICY], "same-origin");
        for inline in ["<style", "style=", "onclick", "onsubmit", "javascript:"] {
            assert!(!r.text.contains(inline), "{inline} on {path}");
        }
        // Scripts only from this server's /static, never inline (issue 19.3's inbox.js).
        let external = r#"<script src="/static/inbox.js" defer></script>"#;
        assert!(!r.text.replace(external, "").contains("<script"), "inline script on {path}");
    }
    let css = send(&f.app, get("/static/aduan.css", None)).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.text.contains("font-family"));
    for path in ["/api/v1/tickets".to_string(), format!("/api/v1/tickets/{code}")] {
        let r = send(&f.app, bearer("GET", &path, &f.read_key, None)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

/// Issue 14.11: `/metrics` behind its bearer token when one is configured.
#[tokio::test]
async fn metrics_want_their_token_when_configured() {
    let f = fx().await;
    assert_eq!(send(&f.app, get("/metrics", None)).await.status, StatusCode::OK);
    let f = fx_with(|c| c.metrics_token = Some("metrics-token-0123456789".into())).await;
    assert_eq!(send(&f.app, get("/metrics", None)).await.status, StatusCode::UNAUTHORIZED);
    let wrong = bearer("GET", "/metrics", "metrics-token-012345678", None);
    assert_eq!(send(&f.app, wrong).await.status, StatusCode::UNAUTHORIZED);
    let right = bearer("GET", "/metrics", "metrics-token-0123456789", None);
    let r = send(&f.app, right).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("aduan_"));
}

/// Issue 14.11: a key revoked through the API stops working at once on this instance
/// (its cache forgets it), and key names with ':' are refused.
#[tokio::test]
async fn a_revoked_key_stops_at_once_and_key_names_have_no_colon() {
    let f = fx().await;
    let r =
        send(&f.app, bearer("POST", "/api/v1/keys", &f.admin_key, Some(json!({"name": "app:x"}))))
            .await;
    assert_eq!(
        (r.status, r.json()["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let r =
        send(&f.app, bearer("POST", "/api/v1/keys", &f.read_key, Some(json!({"name": "dash2"}))))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &f.app,
        bearer(
            "POST",
            "/api/v1/keys",
            &f.admin_key,
            Some(json!({"name": "dash2", "scope": "read"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_i64().unwrap();
    let token = r.json()["token"].as_str().unwrap().to_owned();
    // Used, hence cached.
    for _ in 0..2 {
        let r = send(&f.app, bearer("GET", "/api/v1/tickets", &token, None)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // The pre-existing read key, cached too, is revoked by id like any other.
    let r = send(&f.app, bearer("GET", "/api/v1/tickets", &f.read_key, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&f.app, bearer("POST", &format!("/api/v1/keys/{id}/revoke"), &f.admin_key, None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(&f.app, bearer("GET", "/api/v1/tickets", &token, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a revoked key still works");
    let r = send(&f.app, bearer("POST", "/api/v1/keys/999999/revoke", &f.admin_key, None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = f.store.audit_log(10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "api_key_revoked"));
}

// --- receipts: how each answer fared, in the JSON, on the page, in /metrics ---

#[tokio::test]
async fn each_answer_shows_its_delivery_and_failures_are_counted() {
    use aduan_store::{CallbackReceipt, DeliveryReceipt, ReceiptStatus};
    let f = fx().await;
    let code = ticket(&f.store, "d1", "Lampu jalan mati", Some("DPU")).await;
    // The answer goes out by SMS; the gateway reports it undeliverable.
    let operator = aduan_core::Actor::User("operator@kab.go.id".into());
    f.store.reply(code, "Segera kami perbaiki.".into(), operator).await.unwrap();
    let claimed =
        f.store.outbox_claim(vec![Channel::Sms], 10, chrono::Duration::seconds(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    f.store.outbox_sent(claimed[0].id, Some("twilio:SM1".into())).await.unwrap();
    let r =
        send(&f.app, bearer("GET", &format!("/api/v1/tickets/{code}"), &f.admin_key, None)).await;
    let out = r.json()["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(out["receipt"]["status"], "sent", "{out}");
    assert!(out["receipt"]["at"].is_string(), "{out}");
    assert_eq!(out["receipt"]["error"], Value::Null);
    let page = send(&f.app, get("/metrics", None)).await;
    assert!(page.text.contains("aduan_delivery_failed_total{channel=\"sms\"} 0"), "{}", page.text);

    let failed = CallbackReceipt {
        outbox_id: Some(claimed[0].id),
        receipt: DeliveryReceipt {
            channel: Channel::Sms,
            provider_id: "twilio:SM1".into(),
            status: ReceiptStatus::Failed,
            at: chrono::Utc::now(),
            error: Some("+6281234567890 unreachable".into()),
        },
    };
    assert_eq!(f.store.outbox_callback_receipts(vec![failed]).await.unwrap(), vec![true]);
    let r =
        send(&f.app, bearer("GET", &format!("/api/v1/tickets/{code}"), &f.admin_key, None)).await;
    let out = r.json()["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (out["receipt"]["status"].clone(), out["receipt"]["error"].clone()),
        (json!("failed"), json!("delivery failed: +6281234567890 unreachable")),
        "{out}"
    );
    // The page says it in Indonesian; an official sees the reason masked.
    let u = login(&f.app, "operator@kab.go.id").await;
    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&u.cookie))).await;
    assert!(page.text.contains("<span class=\"receipt\">gagal</span>"), "{}", page.text);
    let official = login(&f.app, "dpu@kab.go.id").await;
    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&official.cookie))).await;
    assert!(page.text.contains("<span class=\"receipt\">gagal</span>"), "{}", page.text);
    assert!(!page.text.contains("6281234567890"), "{}", page.text);
    let page = send(&f.app, get("/metrics", None)).await;
    assert!(page.text.contains("aduan_delivery_failed_total{channel=\"sms\"} 1"), "{}", page.text);
}

// --- windows: where an answer went, and an answer waiting for the resident ---

#[tokio::test]
async fn an_answer_that_waits_for_the_resident_is_explained_to_operators_and_masked_in_public() {
    use aduan_core::{IdentityKind, UndeliverableReason};
    let f = fx().await;
    let wa = aduan_core::Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
    let msg = aduan_core::InboundMessage {
        channel: Channel::Whatsapp,
        provider_id: "wamid.W1".into(),
        sender: aduan_core::Sender {
            identity: Some(wa),
            display_name: Some("Siti".into()),
            contacts: vec![],
        },
        text: "Lampu jalan mati".into(),
        attachments: vec![],
        location: None,
        received_at: chrono::Utc::now() - chrono::Duration::hours(30),
        thread: Default::default(),
    };
    let code = f.store.ingest(msg).await.unwrap().ticket.unwrap();
    let op = aduan_core::Actor::User("op@kab.go.id".into());
    let text = "Lampu sudah diganti. Info: 081234567890.";
    let reply = f.store.reply(code, text.into(), op).await.unwrap();
    let lease = chrono::Duration::seconds(60);
    let rows = f.store.outbox_claim(vec![Channel::Whatsapp], 10, lease).await.unwrap();
    let row = rows.iter().find(|r| r.id == reply.outbox_id).unwrap();
    let order = aduan_core::DEFAULT_FALLBACK_ORDER.to_vec();
    let why = UndeliverableReason::WindowClosed;
    let now = chrono::Utc::now();
    f.store
        .outbox_undeliverable(row.id, why, None, vec![Channel::Whatsapp], order, now)
        .await
        .unwrap();

    // Operators see where it went and why.
    let path = format!("/api/v1/tickets/{code}");
    let r = send(&f.app, bearer("GET", &path, &f.admin_key, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let j = r.json();
    let answer =
        j["messages"].as_array().unwrap().iter().find(|m| m["purpose"] == "reply").unwrap();
    assert_eq!(answer["delivery"], "waiting_for_resident");
    assert_eq!(
        answer["delivery_note"],
        "menunggu warga menulis lagi (jendela WhatsApp 24 jam tertutup)"
    );
    assert_eq!(answer["deliveries"][0]["undeliverable"], "window_closed");

    // The public page shows it, masked, with what the resident can do.
    let r = send(&f.app, get(&format!("/api/v1/public/tickets/{code}"), None)).await;
    let j = r.json();
    assert_eq!(j["answers"][0]["waiting"], true);
    let shown = j["answers"][0]["text"].as_str().unwrap();
    assert!(
        shown.starts_with("Lampu sudah diganti.") && !shown.contains("081234567890"),
        "{shown}"
    );
    let html = send(&f.app, get(&format!("/lacak/{code}"), None)).await;
    assert!(html.text.contains(aduan_core::texts::WAITING_PUBLIC), "{}", html.text);
    for personal in ["081234567890", "6281234567890", "whatsapp", "WhatsApp"] {
        assert!(!r.text.contains(personal), "{personal} in the public JSON");
        assert!(!html.text.contains(personal), "{personal} on the tracking page");
    }
}

// --- confirm: the resident's confirmation on /lacak, satisfaction open data ---

#[tokio::test]
async fn only_the_residents_link_confirms_on_lacak_a_stranger_with_the_code_cannot() {
    let f = fx().await;
    let code = ticket(&f.store, "c1", "Lampu jalan mati", Some("DPU")).await;
    let op = aduan_core::Actor::User("operator@kab.go.id".into());
    f.store.set_status(code, Status::Resolved, op, None).await.unwrap();
    let key = f.store.ask_confirmation(code, chrono::Utc::now()).await.unwrap().unwrap();
    // A stranger with the code: told a confirmation is pending, no form.
    let r = send(&f.app, get(&format!("/lacak/{code}"), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("Menunggu konfirmasi pelapor"), "{}", r.text);
    assert!(!r.text.contains("konfirmasi\" id=\"konfirmasi") && !r.text.contains("name=\"k\""));
    let r = send(&f.app, get(&format!("/lacak/{code}?k={code}"), None)).await;
    assert!(!r.text.contains("name=\"k\""), "the code is not a key");
    // Posting with the code, a made-up key or none: 403, nothing changes.
    let path = format!("/lacak/{code}/konfirmasi");
    for k in [code.to_string(), "0".repeat(48), String::new()] {
        let r = send(&f.app, form(&path, "", &[("k", &k), ("jawaban", "1"), ("nilai", "5")])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{k}: {}", r.text);
    }
    assert_eq!(f.store.ticket(code).await.unwrap().unwrap().summary.status, Status::Resolved);
    // Bad fields: 400.
    let r = send(&f.app, form(&path, "", &[("k", &key), ("jawaban", "3")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&f.app, form(&path, "", &[("k", &key), ("jawaban", "1"), ("nilai", "9")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The resident's link shows the form with their key.
    let r = send(&f.app, get(&format!("/lacak/{code}?k={key}"), None)).await;
    assert_eq!(input_value(&r.text, "k"), key);
    assert!(r.text.contains("Apakah masalahnya sudah beres?"));
    let r = send(
        &f.app,
        form(&path, "", &[("k", &key), ("jawaban", "2"), ("pesan", "masih mati di ujung gang")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Terima kasih, jawaban Anda sudah kami terima."));
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.status, Status::Assigned);
    assert!(v.messages.iter().any(|m| m.text == "masih mati di ujung gang"));
    // The resident's words are not on the public page.
    let r = send(&f.app, get(&format!("/lacak/{code}"), None)).await;
    assert!(!r.text.contains("ujung gang"));
    // Used: the key does nothing any more.
    let r = send(&f.app, form(&path, "", &[("k", &key), ("jawaban", "1")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn satisfaction_is_open_data_in_json_and_csv() {
    let f = fx().await;
    let op = || aduan_core::Actor::User("operator@kab.go.id".into());
    for (i, answer) in ["1", "1", "2"].into_iter().enumerate() {
        let code = ticket(&f.store, &format!("q{i}"), "Jalan rusak", Some("DPU")).await;
        f.store.reply(code, "Segera.".into(), op()).await.unwrap();
        f.store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let key = f.store.ask_confirmation(code, chrono::Utc::now()).await.unwrap().unwrap();
        let verdict = if answer == "1" {
            aduan_core::confirm::Verdict::Fixed
        } else {
            aduan_core::confirm::Verdict::NotFixed
        };
        let a = aduan_core::confirm::Confirmation { verdict, rating: Some(4) };
        assert!(f.store.confirm_with_key(code, key, a, None).await.unwrap());
    }
    let r = send(&f.app, get("/api/v1/stats?view=satisfaction&group_by=opd", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let j = r.json();
    assert_eq!(j["view"], "satisfaction");
    let dpu = &j["rows"][0];
    assert_eq!(dpu["key"], "DPU");
    assert_eq!((dpu["asked"].as_i64(), dpu["confirmed"].as_i64()), (Some(3), Some(2)));
    assert_eq!(dpu["reopened"], 1);
    assert_eq!(dpu["mean_rating"], 4.0);
    assert_eq!(dpu["response_buckets"], json!([3, 0, 0, 0]));
    for personal in ["Siti", "Jalan", "+62", "ADU-"] {
        assert!(!r.text.contains(personal), "{personal} in open data");
    }
    let r = send(&f.app, get("/api/v1/stats?view=satisfaction&group_by=channel&format=csv", None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let mut lines = r.text.lines();
    assert!(lines.next().unwrap().starts_with("channel,asked,confirmed,reopened,expired,pending,"));
    let web = lines.next().unwrap();
    assert!(web.starts_with("web,3,2,1,0,0,0.6667,0.3333,3,4.00,3,"), "{web}");
    let r = send(&f.app, get("/api/v1/stats?view=kepuasan", None)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Issue 18.5: with a registry without categories the services are the OPDs; a request to
/// one names its OPD in the ticket's text (for the routing worker) and sets no category,
/// and once disposed it shows that OPD as its service.
#[tokio::test]
async fn open311_services_are_the_opds_without_categories() {
    let f = fx_with(|c| {
        c.services = vec![aduan_web::Open311Service {
            service_code: "DPU".into(),
            service_name: "Dinas Pekerjaan Umum".into(),
            description: "Aduan untuk Dinas Pekerjaan Umum, misalnya: jalan rusak.".into(),
            group: "Perangkat Daerah".into(),
            keywords: vec!["jalan rusak".into()],
        }];
        c.services_are_opds = true;
    })
    .await;
    let r = send(&f.app, get("/open311/v2/services.json", None)).await;
    assert_eq!(r.json()[0]["service_code"], "DPU");
    assert_eq!(r.json()[0]["service_name"], "Dinas Pekerjaan Umum");
    let key = f.intake_key.clone();
    let r = send(
        &f.app,
        geo_post(&[
            ("api_key", key.as_str()),
            ("service_code", "DPU"),
            ("lat", "-7.4246"),
            ("long", "109.2396"),
            ("description", "Gorong-gorong ambrol di depan SD"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.json()[0]["service_request_id"].as_str().unwrap().to_owned();
    let code: TicketCode = id.parse().unwrap();
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.category, None);
    assert_eq!(
        v.messages[0].text,
        "Gorong-gorong ambrol di depan SD\n\nLayanan: Dinas Pekerjaan Umum (DPU)"
    );
    // Not yet disposed: no service shown; disposed to DPU: the DPU service.
    let r = send(&f.app, get(&format!("/open311/v2/requests/{id}.json"), None)).await;
    assert_eq!(r.json()[0]["service_code"], Value::Null);
    f.store.assign(code, "DPU".into(), aduan_core::Actor::System, None).await.unwrap();
    let r = send(&f.app, get(&format!("/open311/v2/requests/{id}.json"), None)).await;
    assert_eq!(r.json()[0]["service_code"], "DPU");
    assert_eq!(r.json()[0]["service_name"], "Dinas Pekerjaan Umum");
    let r = send(&f.app, get("/open311/v2/requests.json?service_code=DPU", None)).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{}", r.text);
}

/// Issue 18.6: routing quality per OPD and overall in `/api/v1/stats?view=routing` (JSON and
/// CSV), on the dashboard, and as counters in `/metrics`.
#[tokio::test]
async fn routing_quality_is_in_the_stats_the_dashboard_and_the_metrics() {
    use aduan_store::{RouteAction, RouteResult};
    let f = fx().await;
    let routed = ticket(&f.store, "r1", "Jalan rusak", None).await;
    let assign = RouteResult::new(RouteAction::Assign { opd: "DPU".into(), note: "x".into() });
    let later = chrono::Utc::now() + chrono::Duration::hours(3);
    assert!(f.store.route_done(routed, assign, later).await.unwrap());
    let op = aduan_core::Actor::User("operator@kab.go.id".into());
    f.store.assign(routed, "DINKES".into(), op, None).await.unwrap();
    ticket(&f.store, "r2", "Puskesmas", Some("DINKES")).await;
    ticket(&f.store, "r3", "Halo", None).await;

    let r = send(&f.app, get("/api/v1/stats?view=routing", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let j = r.json();
    assert_eq!(j["view"], "routing");
    let all = &j["rows"][0];
    assert_eq!(all["opd"], Value::Null);
    assert_eq!((all["tickets"].as_i64(), all["auto_routed"].as_i64()), (Some(3), Some(1)));
    assert_eq!(all["redisposed_share"], 1.0);
    let dpu = &j["rows"][2];
    assert_eq!((dpu["opd"].as_str(), dpu["redisposed"].as_i64()), (Some("DPU"), Some(1)));
    assert!((dpu["median_disposition_hours"].as_f64().unwrap() - 3.0).abs() < 0.01, "{dpu}");
    for personal in ["Siti", "Jalan", "+62", "ADU-"] {
        assert!(!r.text.contains(personal), "{personal} in open data");
    }
    let r = send(&f.app, get("/api/v1/stats?view=routing&format=csv", None)).await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let lines: Vec<&str> = r.text.lines().collect();
    assert!(lines[0].starts_with("opd,tickets,disposed,auto_routed,redisposed,"), "{}", r.text);
    assert!(lines[3].starts_with("DPU,1,1,1,1,1.0000,1.0000,3.0"), "{}", r.text);
    let r = send(&f.app, get("/api/v1/stats?view=routing&from=kemarin", None)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let u = login(&f.app, "operator@kab.go.id").await;
    let r = send(&f.app, get("/dashboard", Some(&u.cookie))).await;
    assert!(r.text.contains("Ketepatan disposisi otomatis per OPD"), "{}", r.text);
    assert!(r.text.contains("<td>1 (100%)</td>"), "the re-disposed share of DPU");

    let m = send(&f.app, get("/metrics", None)).await.text;
    for needle in [
        "aduan_routing_auto_total{opd=\"DPU\"} 1",
        "aduan_routing_redisposed_total{opd=\"DPU\"} 1",
        "aduan_routing_manual_total{opd=\"DINKES\"} 1",
    ] {
        assert!(m.contains(needle), "{needle} missing from /metrics");
    }
}
