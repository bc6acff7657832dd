//! Issue 19 in memory: attachments served with their permissions and headers, thumbnails,
//! the location link, channel badges, canned answers, operator assignment and bulk actions.

use aduan_core::{
    AttachmentRef, Channel, Identity, InboundMessage, Location, Sender, ThreadHints, TicketCode,
};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};

mod common;
use common::*;

fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// A 1×1 … `w`×`h` red PNG.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A web report with the given attachments (content stored in the fixture's blob store),
/// disposed to `opd`.
async fn ticket_with(
    f: &Fx,
    id: &str,
    files: &[(&str, &str, &[u8])],
    location: Option<Location>,
    opd: Option<&str>,
) -> TicketCode {
    let mut attachments = Vec::new();
    for (name, ctype, data) in files {
        let sha256 = f.state.blobs.put(data.to_vec()).await.unwrap();
        attachments.push(AttachmentRef {
            filename: Some((*name).into()),
            content_type: (*ctype).into(),
            size: data.len() as u64,
            sha256,
            provider_ref: None,
        });
    }
    let msg = InboundMessage {
        channel: Channel::Web,
        provider_id: id.into(),
        sender: Sender {
            identity: Some(Identity::phone("081234567890").unwrap()),
            display_name: Some("Siti Aminah".into()),
            contacts: vec![],
        },
        text: "Jalan berlubang di depan pasar.".into(),
        attachments,
        location,
        received_at: chrono::Utc::now(),
        thread: ThreadHints::default(),
    };
    let code = f.store.ingest(msg).await.unwrap().ticket.unwrap();
    if let Some(o) = opd {
        let actor = aduan_core::Actor::User("operator@kab.go.id".into());
        f.store.assign(code, o.into(), actor, None).await.unwrap();
    }
    code
}

/// The `url` of each attachment of the ticket's first message, from the ticket JSON.
async fn urls(f: &Fx, code: TicketCode) -> Vec<String> {
    let r = send(&f.app, bearer(&format!("/api/v1/tickets/{code}"), &f.read_key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["messages"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["url"].as_str().expect("every attachment has a url").to_owned())
        .collect()
}

fn assert_protected(r: &Resp) {
    assert_eq!(r.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(r.header(header::CONTENT_SECURITY_POLICY), "default-src 'none'; sandbox");
    assert!(r.header(header::CACHE_CONTROL).starts_with("private"), "{:?}", r.headers);
}

#[tokio::test]
async fn an_attachment_is_served_only_to_who_may_see_its_ticket() {
    let f = fx().await;
    let photo = png(8, 6);
    let code =
        ticket_with(&f, "w1", &[("foto jalan\".png", "image/png", &photo)], None, Some("DPU"))
            .await;
    let url = urls(&f, code).await.remove(0);
    assert!(url.starts_with("/attachments/"), "{url}");

    let operator = login(&f.app, "operator@kab.go.id").await;
    let r = send(&f.app, get(&url, Some(&operator.cookie))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.bytes, photo);
    assert_eq!(r.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(r.header(header::CONTENT_DISPOSITION), "inline; filename=\"foto_jalan_.png\"");
    assert_protected(&r);

    // The official of the ticket's OPD and a read key see it too.
    let dpu = login(&f.app, "dpu@kab.go.id").await;
    assert_eq!(send(&f.app, get(&url, Some(&dpu.cookie))).await.status, StatusCode::OK);
    let r = send(&f.app, bearer(&url, &f.read_key)).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::OK, photo.len()));

    // Another OPD's official: not theirs, nothing of the content.
    let dinkes = login(&f.app, "dinkes@kab.go.id").await;
    let r = send(&f.app, get(&url, Some(&dinkes.cookie))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_ne!(r.bytes, photo);
    assert_protected(&r);
    let r = send(&f.app, get(&format!("{url}/thumb"), Some(&dinkes.cookie))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Nobody signed in; a key without read scope.
    let r = send(&f.app, get(&url, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_ne!(r.bytes, photo);
    assert_eq!(send(&f.app, bearer(&url, &f.intake_key)).await.status, StatusCode::FORBIDDEN);

    // Unknown and malformed ids.
    for path in ["/attachments/999999", "/attachments/abc", "/attachments/-1/thumb"] {
        let r = send(&f.app, get(path, Some(&operator.cookie))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_video_is_served_by_byte_ranges_and_only_to_who_may_see_it() {
    let f = fx().await;
    let video: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let code =
        ticket_with(&f, "w9", &[("banjir.mp4", "video/mp4", &video)], None, Some("DPU")).await;
    let url = urls(&f, code).await.remove(0);
    let operator = login(&f.app, "operator@kab.go.id").await;
    let ranged = |range: &str, cookie: &str| {
        let mut req = get(&url, Some(cookie));
        req.headers_mut().insert(header::RANGE, range.parse().unwrap());
        req
    };
    let r = send(&f.app, ranged("bytes=1000-1999", &operator.cookie)).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text);
    assert_eq!(r.bytes, video[1000..2000]);
    assert_eq!(r.header(header::CONTENT_RANGE), "bytes 1000-1999/10000");
    assert_eq!(r.header(header::CONTENT_TYPE), "video/mp4");
    assert_eq!(r.header(header::ACCEPT_RANGES), "bytes");
    assert_protected(&r);
    // The tail, and a range past the end.
    let r = send(&f.app, ranged("bytes=-100", &operator.cookie)).await;
    assert_eq!((r.status, r.bytes.as_slice()), (StatusCode::PARTIAL_CONTENT, &video[9_900..]));
    let r = send(&f.app, ranged("bytes=20000-", &operator.cookie)).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_protected(&r);
    // Without a range: the whole file.
    let r = send(&f.app, get(&url, Some(&operator.cookie))).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::OK, video.len()));
    // A range asked by another OPD's official gets nothing of the content.
    let dinkes = login(&f.app, "dinkes@kab.go.id").await;
    let r = send(&f.app, ranged("bytes=0-99", &dinkes.cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.bytes.windows(100).any(|w| w == &video[..100]));
}

#[tokio::test]
async fn svg_and_html_uploads_never_render_inline() {
    let f = fx().await;
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    let html = b"<html><script>alert(1)</script></html>";
    let code = ticket_with(
        &f,
        "w2",
        &[("x.svg", "image/svg+xml", svg), ("x.html", "text/html; charset=utf-8", html)],
        None,
        None,
    )
    .await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    for (url, name) in urls(&f, code).await.iter().zip(["x.svg", "x.html"]) {
        let r = send(&f.app, get(url, Some(&operator.cookie))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header(header::CONTENT_TYPE), "application/octet-stream", "{name}");
        assert_eq!(
            r.header(header::CONTENT_DISPOSITION),
            format!("attachment; filename=\"{name}\"")
        );
        assert_protected(&r);
        // No thumbnail of a picture that is not one of the four decoded formats.
        let r = send(&f.app, get(&format!("{url}/thumb"), Some(&operator.cookie))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_photo_has_a_thumbnail_made_once_and_shown_in_the_thread() {
    let f = fx().await;
    let place = Location { lat: -7.424_1, lon: 109.239_6 };
    let code =
        ticket_with(&f, "w3", &[("foto.png", "image/png", &png(900, 600))], Some(place), None)
            .await;
    let url = urls(&f, code).await.remove(0);
    let operator = login(&f.app, "operator@kab.go.id").await;
    let r = send(&f.app, get(&format!("{url}/thumb"), Some(&operator.cookie))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header(header::CONTENT_TYPE), "image/jpeg");
    assert_protected(&r);
    let thumb = image::load_from_memory(&r.bytes).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 213));
    // Kept by content hash under the store's thumbs folder.
    let kept: Vec<_> = walk(&f.dir.path().join("att").join("thumbs"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    let again = send(&f.app, get(&format!("{url}/thumb"), Some(&operator.cookie))).await;
    assert_eq!(again.bytes, r.bytes);

    let page = send(&f.app, get(&format!("/tickets/{code}"), Some(&operator.cookie))).await.text;
    assert!(page.contains(&format!("<img class=\"thumb\" src=\"{url}/thumb\"")), "{page}");
    assert!(page.contains(&format!("<a href=\"{url}\"")), "{page}");
    assert!(
        page.contains(
            "https://www.openstreetmap.org/?mlat=-7.424100&amp;mlon=109.239600#map=17/-7.424100/109.239600"
        ) || page.contains(
            "https://www.openstreetmap.org/?mlat=-7.424100&#38;mlon=109.239600#map=17/-7.424100/109.239600"
        ),
        "{page}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn channel_badges_are_text_not_emoji() {
    let f = fx().await;
    ticket_with(&f, "w4", &[], None, None).await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let page = send(&f.app, get("/", Some(&operator.cookie))).await.text;
    assert!(page.contains("<span class=\"badge ch-web\">Web</span>"), "{page}");
    assert!(page.contains("[WA] whatsapp"), "{page}");
    let emoji = page
        .chars()
        .find(|c| matches!(*c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x1D400..=0x1D7FF));
    assert_eq!(emoji, None);
}

/// The value of the `<textarea id="reply-text">` of a ticket page.
fn reply_box(page: &str) -> String {
    let at = page.find("id=\"reply-text\"").expect("answer box");
    let rest = &page[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..rest.find("</textarea>").unwrap()].to_owned()
}

#[tokio::test]
async fn canned_answers_are_managed_by_admins_and_fill_the_answer_box() {
    let f = fx().await;
    let code = ticket_with(&f, "c1", &[], None, Some("DPU")).await;
    let admin = login(&f.app, "admin@kab.go.id").await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let body = "Yth. {nama}, aduan {kode} sudah diteruskan ke {opd}. {tanda}";

    // Only admins, only with the form's token.
    let add = |c: &User, csrf: &str, title: &str, category: &str| {
        form(
            "/canned",
            &c.cookie,
            &[("csrf", csrf), ("title", title), ("body", body), ("category", category)],
        )
    };
    assert_eq!(send(&f.app, add(&admin, "forged", "A", "")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&f.app, add(&operator, &operator.csrf, "A", "")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&f.app, get("/canned", Some(&operator.cookie))).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(f.store.canned_answers().await.unwrap().is_empty());
    let r = send(&f.app, add(&admin, &admin.csrf, "Diteruskan", "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = send(&f.app, add(&admin, &admin.csrf, "Lampu", "lampu")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let all = f.store.canned_answers().await.unwrap();
    assert_eq!(all.len(), 2);
    let id = all.iter().find(|a| a.title == "Diteruskan").unwrap().id;
    let page = send(&f.app, get("/canned", Some(&admin.cookie))).await.text;
    assert!(page.contains("Diteruskan") && page.contains("Lampu"), "{page}");
    let audit = f.store.audit_log(5).await.unwrap();
    assert_eq!(audit[0].action, "canned_answer_added");

    // On the ticket page: the global one only (the ticket has no category), filled.
    let path = format!("/tickets/{code}");
    let page = send(&f.app, get(&path, Some(&operator.cookie))).await.text;
    assert!(page.contains("Diteruskan") && !page.contains(">Lampu<"), "{page}");
    let filled = format!(
        "Yth. Siti Aminah, aduan {code} sudah diteruskan ke Dinas Pekerjaan Umum. {{tanda}}"
    );
    assert!(page.contains(&format!("data-text=\"{filled}\"")), "{page}");
    assert_eq!(reply_box(&page), "", "nothing picked yet");
    // Picked without JavaScript: a GET that pre-fills the box.
    let page = send(&f.app, get(&format!("{path}?canned={id}"), Some(&operator.cookie))).await.text;
    assert_eq!(reply_box(&page), filled);
    // An official sees the name masked, so the greeting falls back.
    let dpu = login(&f.app, "dpu@kab.go.id").await;
    let page = send(&f.app, get(&format!("{path}?canned={id}"), Some(&dpu.cookie))).await.text;
    assert!(reply_box(&page).starts_with("Yth. Bapak/Ibu, aduan"), "{}", reply_box(&page));
    // Sent as edited: an ordinary reply.
    let r = send(
        &f.app,
        form(
            &format!("{path}/reply"),
            &operator.cookie,
            &[("csrf", &operator.csrf), ("text", &filled)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.messages.last().unwrap().text, filled);

    // Edited, then deleted, each audited.
    let r = send(
        &f.app,
        form(
            "/canned",
            &admin.cookie,
            &[
                ("csrf", &admin.csrf),
                ("id", &id.to_string()),
                ("title", "Baru"),
                ("body", "Teks {kode}"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.canned_answer(id).await.unwrap().unwrap().body, "Teks {kode}");
    let del = format!("/canned/{id}/delete");
    assert_eq!(
        send(&f.app, form(&del, &admin.cookie, &[("csrf", "x")])).await.status,
        StatusCode::FORBIDDEN
    );
    let r = send(&f.app, form(&del, &admin.cookie, &[("csrf", &admin.csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.canned_answer(id).await.unwrap(), None);
    let actions: Vec<String> =
        f.store.audit_log(3).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions[..2],
        ["canned_answer_deleted".to_string(), "canned_answer_changed".to_string()]
    );
}

#[tokio::test]
async fn an_operator_takes_a_triage_ticket_and_finds_it_under_mine() {
    let f = fx().await;
    let code = ticket_with(&f, "t1", &[], None, None).await;
    let other = ticket_with(&f, "t2", &[], None, None).await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let path = format!("/tickets/{code}");
    let page = send(&f.app, get(&path, Some(&operator.cookie))).await.text;
    assert!(page.contains("Saya tangani"), "{page}");

    let take = |csrf: &str| form(&format!("{path}/take"), &operator.cookie, &[("csrf", csrf)]);
    assert_eq!(send(&f.app, take("forged")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.ticket(code).await.unwrap().unwrap().summary.assignee, None);
    let r = send(&f.app, take(&operator.csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.assignee.as_deref(), Some("operator@kab.go.id"));
    assert!(v.events.iter().any(|e| e.kind == aduan_core::EventKind::Handler));

    // "milik saya": this one, not the other; the list shows who handles it.
    let mine = send(&f.app, get("/?assignee=me", Some(&operator.cookie))).await.text;
    assert!(mine.contains(&code.to_string()) && !mine.contains(&other.to_string()), "{mine}");
    assert!(mine.contains("<td class=\"assignee\">operator@kab.go.id</td>"), "{mine}");
    let all = send(&f.app, get("/", Some(&operator.cookie))).await.text;
    assert!(all.contains(&other.to_string()));
    // Another operator's "milik saya" is empty.
    let op2 = login(&f.app, "operator2@kab.go.id").await;
    let theirs = send(&f.app, get("/?assignee=me", Some(&op2.cookie))).await.text;
    assert!(!theirs.contains(&code.to_string()), "{theirs}");
    // The ticket JSON says who.
    let r = send(&f.app, bearer(&format!("/api/v1/tickets/{code}"), &f.read_key)).await;
    assert_eq!(r.json()["assignee"], "operator@kab.go.id");

    // Officials neither take nor let go.
    f.store.assign(other, "DPU".into(), aduan_core::Actor::System, None).await.unwrap();
    let dpu = login(&f.app, "dpu@kab.go.id").await;
    let r =
        send(&f.app, form(&format!("/tickets/{other}/take"), &dpu.cookie, &[("csrf", &dpu.csrf)]))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = send(
        &f.app,
        form(&format!("{path}/release"), &operator.cookie, &[("csrf", &operator.csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.ticket(code).await.unwrap().unwrap().summary.assignee, None);
}

fn bulk(
    u: &User,
    csrf: &str,
    action: &str,
    codes: &[TicketCode],
    extra: &[(&str, &str)],
) -> Request<Body> {
    let codes: Vec<String> = codes.iter().map(ToString::to_string).collect();
    let mut fields: Vec<(&str, &str)> = vec![("csrf", csrf), ("action", action)];
    fields.extend(codes.iter().map(|c| ("code", c.as_str())));
    fields.extend_from_slice(extra);
    form("/bulk", &u.cookie, &fields)
}

#[tokio::test]
async fn bulk_dispose_merge_and_reject_each_ticket_audited() {
    let f = fx().await;
    let a = ticket_with(&f, "b1", &[], None, None).await;
    let b = ticket_with(&f, "b2", &[], None, None).await;
    let operator = login(&f.app, "operator@kab.go.id").await;

    // Without the token nothing happens.
    let r = send(&f.app, bulk(&operator, "forged", "assign", &[a, b], &[("opd", "DPU")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.ticket(a).await.unwrap().unwrap().summary.opd, None);

    let r =
        send(&f.app, bulk(&operator, &operator.csrf, "assign", &[a, b], &[("opd", "DPU")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for code in [a, b] {
        let v = f.store.ticket(code).await.unwrap().unwrap();
        assert_eq!(v.summary.opd.as_deref(), Some("DPU"));
        let ev = v.events.iter().find(|e| e.kind == aduan_core::EventKind::Assigned).unwrap();
        assert_eq!(ev.actor.to_string(), "user:operator@kab.go.id");
    }

    // Officials can't bulk-dispose or merge (refused as a whole, nothing touched).
    let c = ticket_with(&f, "b3", &[], None, Some("DPU")).await;
    let dpu = login(&f.app, "dpu@kab.go.id").await;
    let r = send(&f.app, bulk(&dpu, &dpu.csrf, "assign", &[c], &[("opd", "DINKES")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&f.app, bulk(&dpu, &dpu.csrf, "merge", &[a, c], &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.ticket(c).await.unwrap().unwrap().summary.opd.as_deref(), Some("DPU"));

    // Merge into the oldest.
    let d = ticket_with(&f, "b4", &[], None, None).await;
    let r = send(&f.app, bulk(&operator, &operator.csrf, "merge", &[d, b, a], &[])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for code in [b, d] {
        assert_eq!(f.store.ticket(code).await.unwrap().unwrap().summary.merged_into, Some(a));
    }
    assert_eq!(f.store.ticket(a).await.unwrap().unwrap().summary.merged_into, None);

    // Reject with one reason; a partial failure is reported, the rest done.
    let e = ticket_with(&f, "b5", &[], None, None).await;
    let r = send(&f.app, bulk(&operator, &operator.csrf, "reject", &[e], &[])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "no reason");
    let r = send(&f.app, bulk(&operator, &operator.csrf, "reject", &[e, b], &[("reason", "spam")]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let page = r.text;
    assert!(page.contains("1 aduan gagal diproses"), "{page}");
    let v = f.store.ticket(e).await.unwrap().unwrap();
    assert_eq!(v.summary.status, aduan_core::Status::Rejected);
    assert_eq!(v.events.last().unwrap().note.as_deref(), Some("spam"));
}

#[tokio::test]
async fn the_live_inbox_answers_new_rows_only_when_something_changed() {
    let f = fx().await;
    ticket_with(&f, "l1", &[], None, None).await;
    let operator = login(&f.app, "operator@kab.go.id").await;
    let page = send(&f.app, get("/", Some(&operator.cookie))).await.text;
    assert!(page.contains("<script src=\"/static/inbox.js\" defer></script>"));
    let at = page.find("data-version=\"").unwrap() + 14;
    let version: i64 = page[at..at + page[at..].find('"').unwrap()].parse().unwrap();

    let poll = |v: i64| get(&format!("/inbox/rows?since={v}"), Some(&operator.cookie));
    let r = send(&f.app, poll(version)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header(header::HeaderName::from_static("x-inbox-version")), version.to_string());

    // A ticket ingested elsewhere (the API, another instance): the next poll has it.
    let r = send(
        &f.app,
        Request::post("/api/v1/messages")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.intake_key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({"external_id": "api-1", "text": "Sampah menumpuk",
                    "sender": {"id": "u-9", "phone": "+6281299990000"}})
                .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text);
    let newest = f.store.tickets(&Default::default()).await.unwrap().items[0].code;
    let r = send(&f.app, poll(version)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains(&format!("data-code=\"{newest}\" data-triage=\"1\"")), "{}", r.text);
    let v2: i64 = r.header(header::HeaderName::from_static("x-inbox-version")).parse().unwrap();
    assert!(v2 > version);
    assert_eq!(send(&f.app, poll(v2)).await.status, StatusCode::NO_CONTENT);
    // Filters hold: an official polls only their OPD's rows.
    let dpu = login(&f.app, "dpu@kab.go.id").await;
    let r = send(&f.app, get("/inbox/rows", Some(&dpu.cookie))).await;
    assert!(!r.text.contains(&newest.to_string()));
    // Without a session: the sign-in page.
    assert_eq!(send(&f.app, get("/inbox/rows", None)).await.status, StatusCode::SEE_OTHER);
    let js = send(&f.app, get("/static/inbox.js", None)).await;
    assert_eq!(js.header(header::CONTENT_TYPE), "text/javascript; charset=utf-8");
}
