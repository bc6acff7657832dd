//! The operator inbox in a real browser: headless Chromium driven over W3C WebDriver
//! (chromedriver at `ADUAN_TEST_WEBDRIVER`, started by `cargo xtask test`) against a real
//! `aduan serve`. Signs in, filters the inbox, opens a ticket, disposes it, replies and sees
//! the reply in the thread; an official sees only their OPD; a complaint carrying markup
//! renders inert; pages fit a phone; a resident reports through `/lapor` with their position.

use aduan_tests::{Binary, Config, Daemon, full_suite};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::{client, post_message};

const OPERATOR: (&str, &str) = ("operator@banyumaskab.go.id", "sandi-operator-123");
const OFFICIAL: (&str, &str) = ("kepala.dpu@banyumaskab.go.id", "sandi-dpu-12345");
const XSS: &str = "<script>window.pwned=1</script> \"><img src=x onerror=\"window.pwned=2\">";

pub(crate) fn webdriver() -> Option<(String, String)> {
    match std::env::var("ADUAN_TEST_WEBDRIVER") {
        Ok(url) if !url.is_empty() => {
            let chromium =
                std::env::var("ADUAN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
            Some((url, chromium))
        }
        _ => {
            assert!(
                !full_suite(),
                "ADUAN_TEST_FULL is set but ADUAN_TEST_WEBDRIVER is not: the browser tests \
                 can't run. Use `cargo xtask test`."
            );
            eprintln!("ADUAN_TEST_WEBDRIVER unset: browser tests skipped");
            None
        }
    }
}

pub(crate) async fn browser(wd: &str, chromium: &str, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(wd)
        .await
        .expect("a WebDriver session")
}

/// Waits (15 s at most) until the page is at `path` (a click or submit navigates
/// asynchronously; a 303 back to the same URL is waited for with [`eventually`]).
async fn at(c: &Client, path: &str) {
    let t0 = std::time::Instant::now();
    loop {
        let now = c.current_url().await.expect("url");
        let here = match now.query() {
            Some(q) => format!("{}?{q}", now.path()),
            None => now.path().to_owned(),
        };
        if here == path || (path.ends_with('?') && here.starts_with(path)) {
            return;
        }
        assert!(t0.elapsed().as_secs() < 15, "still at {here}, not {path}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The text of `css` once `ok` holds for it (15 s at most); survives the page being
/// replaced between finding the element and reading it.
pub(crate) async fn eventually(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
            && ok(&text)
        {
            return text;
        }
        if t0.elapsed().as_secs() >= 15 {
            let page = c.source().await.unwrap_or_default();
            panic!("{css} never matched; the page:\n{page}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    eventually(c, css, |_| true).await
}

async fn sign_in(c: &Client, daemon: &Daemon, (email, password): (&str, &str)) {
    c.goto(&daemon.url("/login")).await.expect("open /login");
    let form = c.form(Locator::Css("form[action='/login']")).await.expect("the login form");
    form.set_by_name("email", email).await.expect("type the email");
    form.set_by_name("password", password).await.expect("type the password");
    form.submit().await.expect("submit");
    at(c, "/").await;
}

async fn complaint(
    http: &reqwest::Client,
    daemon: &Daemon,
    key: &str,
    id: &str,
    text: &str,
) -> String {
    let body = json!({"external_id": id, "sender": {"name": "Siti", "phone": "081234567890"}, "text": text});
    let r = post_message(http, daemon, key, &body).await.expect("POST a complaint");
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
    r.body["ticket"].as_str().expect("a ticket code").to_owned()
}

/// A daemon on SQLite with the routing worker off (operators dispose by hand here: the
/// worker would dispose a road complaint to DPU before they do), and the WebDriver URL and
/// Chromium to drive it; `None` when a peer is missing outside the full suite.
async fn desk() -> Option<(Daemon, String, String)> {
    let bin = Binary::locate()?;
    let (wd, chromium) = webdriver()?;
    let config = Config::sqlite().env("ADUAN__ROUTING__ENABLED", "false");
    Some((Daemon::start(&bin, config).await, wd, chromium))
}

#[tokio::test]
async fn the_inbox_works_in_a_real_browser() {
    let Some((daemon, wd, chromium)) = desk().await else { return };
    for (user, role) in [(OPERATOR, "operator"), (OFFICIAL, "official")] {
        let mut args = vec!["user", "add", user.0, "--role", role];
        if role == "official" {
            args.extend(["--opd", "DPU"]);
        }
        let out = daemon.site().cli_with_stdin(&args, &format!("{}\n", user.1));
        assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    }
    let http = client();
    let key = daemon.apikey("browser", "intake");
    let road = complaint(&http, &daemon, &key, "b1", "Jalan berlubang di Karangklesem").await;
    let waste = complaint(&http, &daemon, &key, "b2", "Sampah menumpuk di pasar").await;
    let markup = complaint(&http, &daemon, &key, "b3", XSS).await;

    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&wd, &chromium, profile.path()).await;
    sign_in(&c, &daemon, OPERATOR).await;
    let inbox = text(&c, "table").await;
    for code in [&road, &waste, &markup] {
        assert!(inbox.contains(code.as_str()), "{code} missing from the inbox:\n{inbox}");
    }

    // Filter by text.
    let filters = c.form(Locator::Css("form.filters")).await.expect("the filter form");
    filters.set_by_name("q", "berlubang").await.expect("type a query");
    filters.submit().await.expect("filter");
    at(&c, "/?").await;
    let filtered = eventually(&c, "table", |t| !t.contains(waste.as_str())).await;
    assert!(filtered.contains(road.as_str()) && !filtered.contains(waste.as_str()), "{filtered}");

    // Open the ticket, dispose it to DPU, reply, see the reply in the thread.
    c.find(Locator::Css(&format!("a[href='/tickets/{road}']")))
        .await
        .expect("link")
        .click()
        .await
        .expect("open");
    assert!(text(&c, "#thread").await.contains("Jalan berlubang di Karangklesem"));
    let assign = c
        .form(Locator::Css(&format!("form[action='/tickets/{road}/assign']")))
        .await
        .expect("assign form");
    assign.set_by_name("opd", "DPU").await.expect("choose DPU");
    assign.submit().await.expect("dispose");
    eventually(&c, "#opd", |t| t.starts_with("DPU")).await;
    let reply = c
        .form(Locator::Css(&format!("form[action='/tickets/{road}/reply']")))
        .await
        .expect("reply form");
    reply
        .set_by_name("text", "Tim DPU akan memperbaiki jalan minggu ini.")
        .await
        .expect("type the reply");
    reply.submit().await.expect("reply");
    eventually(&c, "#thread", |t| t.contains("Tim DPU akan memperbaiki jalan minggu ini.")).await;
    assert_eq!(c.current_url().await.expect("url").path(), format!("/tickets/{road}"));
    assert!(text(&c, "#events").await.contains(OPERATOR.0));

    // Markup in a complaint is shown as text and runs nothing.
    c.goto(&daemon.url(&format!("/tickets/{markup}"))).await.expect("open the markup ticket");
    let thread = text(&c, "#thread").await;
    assert!(thread.contains("<script>window.pwned=1</script>"), "{thread}");
    let pwned: Value = c.execute("return window.pwned === undefined && document.querySelectorAll('#thread img, #thread script').length", vec![]).await.expect("run a check");
    assert_eq!(pwned, json!(0), "markup became live elements or ran");

    // Sign out; the official sees their OPD's ticket only.
    c.form(Locator::Css("form[action='/logout']"))
        .await
        .expect("logout form")
        .submit()
        .await
        .expect("sign out");
    at(&c, "/login").await;
    sign_in(&c, &daemon, OFFICIAL).await;
    let theirs = text(&c, "table").await;
    assert!(theirs.contains(road.as_str()), "{theirs}");
    assert!(!theirs.contains(waste.as_str()) && !theirs.contains(markup.as_str()), "{theirs}");
    c.goto(&daemon.url(&format!("/tickets/{waste}"))).await.expect("try another OPD's ticket");
    assert_eq!(text(&c, "h1").await, "Tidak diizinkan");
    c.goto(&daemon.url(&format!("/tickets/{road}"))).await.expect("open their ticket");
    assert!(text(&c, "#reporter").await.contains("S***"), "reporter masked");
    c.close().await.expect("close the session");
}

// --- inbox: the desk in a real browser (issue 19.6, 19.7) ---

const ADMIN: (&str, &str) = ("admin@banyumaskab.go.id", "sandi-admin-12345");

/// A 320×240 PNG of a pothole (made for this test).
const POTHOLE_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAUAAAADwCAIAAAD+Tyo8AAADHElEQVR42u3dwQmDQBCG0akkx9yszks6SFdpKBdLSEoQRN2d/8krYFj2Q1TUen++wKTKEoCAAQEDAgYBAwIGBAwIGAQMCBgQMAgYEDAgYEDAIGBAwICAAQGDgAEBAwIGAQMCBgQMCBgEDAgYEDAgYBAwIGBAwCBgQMCAgAEBg4ABAQMCBgFbBRAwIGBAwCBgQMCAgAEBg4ABAQMCBgEDAgYEDAgYBAwIGBAwIGAQMCBgQMAgYEDAgIABAYOAAQEDAgb+Aa/rC5iUgEHAgIABAYOAAQEDAgYEDAIGBAwIGAQMCBgQMCBgEDAgYEDAgIBBwICAAQGDgAEBAwIGBAwCBgQMCBgQMAgYEDAgYBAwIGBAwCzPx10svoAZvVJtTxzwdtpx3tANZp4u1z3sjetnFvAVM7fM9UjS9oaAR585Nto9MQtYwCPOrNLbr58FLGDRThxzXMDu4znZuq3tMZJuUbKAdYuSBaxbJQtYushYwLpFyQKWLjIWsHRlLGDpImMBSxcZC1i95DZc0kXGApYuMhawetGwgNVLSMMlXWQsYPWiYQGrFw2HB2ybktNwqRcNC1i9aFjA6kXDgQHbjmQ2XOpFwwIWMAIWsHrRsIBBwOpFwwIWMAIWsHrRsIBBwOpFwwIWMAIWMAhYwAhYwAJGwAIWMAIWMAhYwAhYwAJGwAIWMAIWMAhYwAhYwAJGwN5GAm8jCRgBC1jDqFfAAkbAvkoJPesVMAhYw6hXwAJGwP5OCCn1+j8w6hWwhlGvgDWMetMD1jA59fYMWMOE1Ns2YA2TUG/ngDVM+3qbByxjGqebErCG1StgDaNeAcsY6QpYxkg3N2ANq1fAMka6ApYx0hWwjKUrYGQsXQErGd0KWMZIV8BK1q2AUbJuBaxkdCtgJesWAYtZtAJGzKIVsJhFi4AlLVcBI2m5CpgObVt8AQMCBgQMAgYEDAgYBAwIGBAwIGAQMCBgQMCAgEHAgIABAYOAAQEDAgYEDAIGBAwIGBAwCBgQMCBgEDAgYEDAgIBBwICAAQGDgAEBAwIGBAwCBgQMCBgQMAgYEDBwxA/SulOSSRziTwAAAABJRU5ErkJggg==";

/// Saves a screenshot as `name` in the folder `ADUAN_TEST_SCREENSHOTS` names, if set (the
/// PNGs in `docs/screenshots` are made so).
async fn screenshot(c: &Client, name: &str) {
    let Ok(dir) = std::env::var("ADUAN_TEST_SCREENSHOTS") else { return };
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write the screenshot");
}

/// Runs `js` until it returns `true` (15 s at most).
async fn until_js(c: &Client, js: &str) {
    let t0 = std::time::Instant::now();
    loop {
        if c.execute(js, vec![]).await.ok() == Some(json!(true)) {
            return;
        }
        assert!(t0.elapsed().as_secs() < 15, "never true: {js}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_desk_works_in_a_real_browser() {
    let Some((daemon, wd, chromium)) = desk().await else { return };
    for (user, role) in [(OPERATOR, "operator"), (ADMIN, "admin")] {
        let out = daemon
            .site()
            .cli_with_stdin(&["user", "add", user.0, "--role", role], &format!("{}\n", user.1));
        assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    }
    let http = client();
    let key = daemon.apikey("desk", "intake");
    let read = daemon.apikey("desk-read", "read");
    let body = json!({
        "external_id": "d1",
        "sender": {"name": "Siti", "phone": "081234567890"},
        "text": "Jalan berlubang besar di depan pasar Karangklesem, sudah dua motor jatuh.",
        "location": {"lat": -7.4246, "lon": 109.2396},
        "attachments": [{"filename": "lubang.png", "content_type": "image/png",
                         "data_base64": POTHOLE_PNG}]
    });
    let r = post_message(&http, &daemon, &key, &body).await.expect("POST the photo");
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
    let photo = r.body["ticket"].as_str().expect("a ticket code").to_owned();
    let lamp = complaint(&http, &daemon, &key, "d2", "Lampu jalan mati di Jl. Gatot Subroto").await;
    let park = complaint(&http, &daemon, &key, "d3", "Lampu taman kota padam sejak kemarin").await;

    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&wd, &chromium, profile.path()).await;
    c.set_window_size(1280, 900).await.expect("window size");

    // An admin adds a canned answer.
    sign_in(&c, &daemon, ADMIN).await;
    c.goto(&daemon.url("/canned")).await.expect("open /canned");
    let add = c.form(Locator::Css("fieldset form[action='/canned']")).await.expect("add form");
    add.set_by_name("title", "Diterima").await.expect("title");
    add.set_by_name("body", "Yth. {nama}, aduan {kode} sudah kami terima dan diteruskan ke {opd}.")
        .await
        .expect("body");
    add.submit().await.expect("add");
    at(&c, "/canned").await;
    until_js(
        &c,
        "return !!document.querySelector(\"#canned input[name='title'][value='Diterima']\")",
    )
    .await;
    c.form(Locator::Css("form[action='/logout']"))
        .await
        .expect("logout")
        .submit()
        .await
        .expect("out");
    at(&c, "/login").await;

    // The operator's inbox updates itself: a complaint arriving through the API appears
    // without a reload, and the title counts it.
    sign_in(&c, &daemon, OPERATOR).await;
    eventually(&c, "#rows", |t| t.contains(park.as_str())).await;
    let live = complaint(&http, &daemon, &key, "d4", "Pohon tumbang menutup jalan desa").await;
    eventually(&c, "#rows", |t| t.contains(live.as_str())).await;
    until_js(&c, "return document.title.startsWith('(1) Kotak masuk')").await;
    assert_eq!(c.current_url().await.expect("url").path(), "/", "no navigation happened");
    screenshot(&c, "inbox.png").await;

    // The photo is in the thread (a thumbnail linking to the full picture), the location
    // links to the map.
    c.goto(&daemon.url(&format!("/tickets/{photo}"))).await.expect("open the photo ticket");
    until_js(
        &c,
        "var i = document.querySelector('#thread img.thumb');          return !!i && i.complete && i.naturalWidth > 0",
    )
    .await;
    let map: Value = c
        .execute("return document.querySelector('a.map').getAttribute('href')", vec![])
        .await
        .expect("the map link");
    assert!(
        map.as_str()
            .unwrap_or_default()
            .starts_with("https://www.openstreetmap.org/?mlat=-7.424600"),
        "{map}"
    );
    screenshot(&c, "ticket-photo.png").await;

    // Take the triage ticket: "milik saya" lists it.
    c.form(Locator::Css(&format!("form[action='/tickets/{photo}/take']")))
        .await
        .expect("take form")
        .submit()
        .await
        .expect("take");
    eventually(&c, "#handler", |t| t.contains(OPERATOR.0)).await;
    c.goto(&daemon.url("/?assignee=me")).await.expect("mine");
    let mine = text(&c, "#rows").await;
    assert!(mine.contains(photo.as_str()) && !mine.contains(lamp.as_str()), "{mine}");

    // A canned answer, picked (the script fills the box), edited, sent.
    c.goto(&daemon.url(&format!("/tickets/{photo}"))).await.expect("back to the ticket");
    c.find(Locator::Css("#canned"))
        .await
        .expect("canned select")
        .select_by_index(1)
        .await
        .expect("pick");
    let filled =
        format!("Yth. Siti, aduan {photo} sudah kami terima dan diteruskan ke OPD terkait.");
    until_js(
        &c,
        &format!("return document.getElementById('reply-text').value === {}", json!(filled)),
    )
    .await;
    let reply = c
        .form(Locator::Css(&format!("form[action='/tickets/{photo}/reply']")))
        .await
        .expect("reply form");
    let sent = format!("{filled} Terima kasih.");
    reply.set_by_name("text", &sent).await.expect("edit");
    reply.submit().await.expect("send");
    eventually(&c, "#thread", |t| t.contains(sent.as_str())).await;

    // Bulk: both lamp complaints to DPU in one go.
    c.goto(&daemon.url("/")).await.expect("inbox");
    for code in [&lamp, &park] {
        c.find(Locator::Css(&format!("input[name='code'][value='{code}']")))
            .await
            .expect("checkbox")
            .click()
            .await
            .expect("tick");
    }
    c.form(Locator::Css("form#bulk"))
        .await
        .expect("bulk form")
        .set_by_name("opd", "DPU")
        .await
        .expect("DPU");
    c.find(Locator::Css("form#bulk button[value='assign']"))
        .await
        .expect("button")
        .click()
        .await
        .expect("bulk");
    at(&c, "/bulk").await;
    let result = text(&c, "#bulk-result").await;
    assert!(result.contains(lamp.as_str()) && result.contains(park.as_str()), "{result}");
    assert!(!result.contains("gagal"), "{result}");
    for code in [&lamp, &park] {
        let t = crate::common::get(
            &http,
            &daemon,
            &format!("/api/v1/tickets/{code}"),
            Some(read.as_str()),
        )
        .await;
        assert_eq!(t.body["opd"], "DPU", "{}", t.text);
    }

    c.goto(&daemon.url("/dashboard")).await.expect("dashboard");
    text(&c, "h1").await;
    screenshot(&c, "dashboard.png").await;

    // On a phone (residents report there, officials read their tickets there) no page is
    // wider than the screen: a wide table scrolls inside itself, a chart shrinks, a long
    // select or word wraps or narrows.
    c.set_window_size(400, 900).await.expect("window size");
    let width =
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]";
    let pages = ["/".to_owned(), format!("/tickets/{photo}"), "/dashboard".to_owned()];
    let resident_pages = ["/lapor".to_owned(), format!("/lacak/{photo}")];
    for path in pages.iter().chain(&resident_pages) {
        c.goto(&daemon.url(path)).await.expect("open the page");
        text(&c, "h1").await;
        let w = c.execute(width, vec![]).await.expect("widths");
        assert!(w[0].as_i64() <= w[1].as_i64() && w[1].as_i64() < Some(640), "{path}: {w}");
    }
    c.close().await.expect("close the session");
}

/// A resident reports from a phone: the form takes their position when they ask (the
/// browser's geolocation, stubbed here: headless Chromium has no position source), the
/// answer page gives the code, and the ticket carries the name, contact and coordinates.
#[tokio::test]
async fn a_resident_reports_from_a_phone_with_their_position() {
    let Some((daemon, wd, chromium)) = desk().await else { return };
    let read = daemon.apikey("lapor-read", "read");
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&wd, &chromium, profile.path()).await;
    c.set_window_size(400, 900).await.expect("window size");
    c.goto(&daemon.url("/lapor")).await.expect("open /lapor");
    // The button is the script's: without it (or without geolocation) it stays hidden.
    until_js(&c, "return !document.getElementById('lokasi-saya').hidden").await;
    c.execute(
        "navigator.geolocation.getCurrentPosition = function (ok) { \
           ok({coords: {latitude: -7.4246, longitude: 109.2396, accuracy: 12}}); };",
        vec![],
    )
    .await
    .expect("stub the position");
    c.find(Locator::Css("#lokasi-saya")).await.expect("the button").click().await.expect("click");
    eventually(&c, "#lokasi-status", |t| t.contains("ketelitian ±12 m")).await;
    let form = c.form(Locator::Css("form[action='/lapor']")).await.expect("the form");
    form.set_by_name("name", "Siti Rahayu").await.expect("name");
    form.set_by_name("contact", "0812 3456 7890").await.expect("contact");
    form.set_by_name("text", "Lampu PJU di depan balai desa mati sejak tiga hari, jalan gelap.")
        .await
        .expect("text");
    form.submit().await.expect("submit");
    let code = eventually(&c, "#code", |t| t.starts_with("ADU-")).await;
    screenshot(&c, "lapor-ok.png").await;
    c.close().await.expect("close the session");

    let http = client();
    let t =
        crate::common::get(&http, &daemon, &format!("/api/v1/tickets/{code}"), Some(&read)).await;
    assert_eq!(t.body["channel"], "web", "{}", t.text);
    assert_eq!(t.body["reporter"]["name"], "Siti Rahayu", "{}", t.text);
    let (lat, lon) = (&t.body["location"]["lat"], &t.body["location"]["lon"]);
    assert_eq!((lat.as_f64(), lon.as_f64()), (Some(-7.4246), Some(109.2396)), "{}", t.text);
}
