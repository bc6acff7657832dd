//! Golden texts: the exact words residents read, one expectation per text. A change of
//! wording shows here as a diff; `UPDATE_EXPECT=1 cargo test -p aduan-core --test texts`
//! rewrites the expectations after a deliberate change.

use aduan_core::texts::{self, StatusFacts};
use aduan_core::{Channel, IdentityField, Status, TicketCode};
use chrono::{DateTime, Utc};
use expect_test::expect;

fn code() -> TicketCode {
    "ADU-7K3M9QXP".parse().unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

#[test]
fn status_labels() {
    let all: Vec<String> = Status::ALL
        .iter()
        .map(|s| {
            format!("{}: {} / {}", s.as_str(), texts::status_label(*s), texts::status_title(*s))
        })
        .collect();
    expect![[r#"
        new: baru / Baru
        awaiting_identity: menunggu identitas / Menunggu identitas
        assigned: terdisposisi / Terdisposisi
        in_progress: ditindaklanjuti / Ditindaklanjuti
        resolved: selesai / Selesai
        rejected: ditolak / Ditolak
        merged: digabung / Digabung
        closed: ditutup / Ditutup"#]]
    .assert_eq(&all.join("\n"));
    // The title is the label, capitalised: pages and messages use the same words.
    for s in Status::ALL {
        let (label, title) = (texts::status_label(s), texts::status_title(s));
        assert_eq!(title.to_lowercase(), label, "{s:?}");
        assert_eq!(s.label_id(), label);
    }
    expect!["belum didisposisikan"].assert_eq(texts::NO_OPD_YET);
}

#[test]
fn local_time() {
    // The default display offset is WIB (UTC+7).
    expect!["30 November 2026 08.00 WIB"].assert_eq(&texts::local_time(at("2026-11-30T01:00:00Z")));
    expect!["5 Januari 2026 00.05 WIB"].assert_eq(&texts::local_time(at("2026-01-04T17:05:59Z")));
}

#[test]
fn receipts() {
    expect!["Terima kasih, aduan Anda sudah kami terima dengan kode ADU-7K3M9QXP. Aduan akan kami tindak lanjuti paling lambat 24 jam. Untuk melihat perkembangannya, kirim: CEK ADU-7K3M9QXP"].assert_eq(&texts::receipt(texts::DEFAULT_ACK_TEMPLATE, code(), 24));
    expect!["Aduan Anda diterima dengan kode ADU-7K3M9QXP. Ditindaklanjuti paling lambat 24 jam. Cek perkembangan: kirim CEK ADU-7K3M9QXP"].assert_eq(&texts::sms_receipt(code(), Some(24)));
    expect![
        "Aduan Anda diterima dengan kode ADU-7K3M9QXP. Cek perkembangan: kirim CEK ADU-7K3M9QXP"
    ]
    .assert_eq(&texts::sms_receipt(code(), None));
}

#[test]
fn the_receipt_on_sms_takes_one_part() {
    let template = texts::DEFAULT_ACK_TEMPLATE;
    // The default template takes two SMS: the short receipt, computed from code and hours.
    assert_eq!(
        texts::receipt_on(Channel::Sms, template, code(), 72),
        texts::sms_receipt(code(), Some(72))
    );
    assert!(texts::fits_one_sms(&texts::sms_receipt(code(), Some(72))));
    assert!(texts::fits_one_sms(&texts::sms_receipt(code(), Some(10_000))));
    // Other channels get the template as written.
    assert_eq!(
        texts::receipt_on(Channel::Telegram, template, code(), 72),
        texts::receipt(template, code(), 72)
    );
    // A template that fits one part is sent as written on SMS too.
    let short = "Kode aduan {code}, dijawab dalam {hours} jam.";
    expect!["Kode aduan ADU-7K3M9QXP, dijawab dalam 72 jam."].assert_eq(&texts::receipt_on(
        Channel::Sms,
        short,
        code(),
        72,
    ));
    // Characters outside the GSM basic alphabet count as not fitting.
    assert!(!texts::fits_one_sms("Kode {code} ✓"));
    assert!(!texts::fits_one_sms(&"a".repeat(161)));
    assert!(texts::fits_one_sms(&"a".repeat(160)));
}

#[test]
fn identity_requests() {
    use IdentityField::{Address, Contact, Name};
    expect![[r#"Aduan Anda (ADU-7K3M9QXP) sudah kami terima. Agar dapat ditindaklanjuti, mohon balas pesan ini dengan nama lengkap dan alamat (desa/kelurahan dan kecamatan), contoh: "Nama: Budi Santoso, Alamat: Desa Kedungwringin, Kec. Jatilawang". Jika identitas Anda ingin dirahasiakan, tambahkan kata RAHASIA; identitas Anda tidak akan diteruskan ke dinas."#]].assert_eq(&texts::identity_request(code(), &[Name, Address]));
    expect![[r#"Aduan Anda (ADU-7K3M9QXP) sudah kami terima. Agar dapat ditindaklanjuti, mohon balas pesan ini dengan nama lengkap, nomor HP atau email yang bisa dihubungi dan alamat (desa/kelurahan dan kecamatan), contoh: "Nama: Budi Santoso, Alamat: Desa Kedungwringin, Kec. Jatilawang". Jika identitas Anda ingin dirahasiakan, tambahkan kata RAHASIA; identitas Anda tidak akan diteruskan ke dinas."#]].assert_eq(&texts::identity_request(code(), &[Name, Contact, Address]));
    expect![[r#"Aduan Anda (ADU-7K3M9QXP) sudah kami terima. Agar dapat ditindaklanjuti, mohon balas pesan ini dengan nomor HP atau email yang bisa dihubungi, contoh: "Nama: Budi Santoso, Alamat: Desa Kedungwringin, Kec. Jatilawang". Jika identitas Anda ingin dirahasiakan, tambahkan kata RAHASIA; identitas Anda tidak akan diteruskan ke dinas."#]].assert_eq(&texts::identity_request(code(), &[Contact]));
    expect![[r#"Aduan Anda (ADU-7K3M9QXP) sudah kami terima. Agar dapat ditindaklanjuti, mohon balas pesan ini dengan nama lengkap dan alamat (desa/kecamatan), contoh: "Nama: Budi Santoso, Alamat: Desa Kedungwringin, Kec. Jatilawang". Jika identitas Anda ingin dirahasiakan, tambahkan kata RAHASIA; identitas Anda tidak akan diteruskan ke dinas."#]].assert_eq(&texts::identity_request(code(), &[]));
}

fn facts(status: Status) -> StatusFacts<'static> {
    StatusFacts {
        asked: code(),
        code: code(),
        status,
        opd: Some("Dinas Pekerjaan Umum"),
        due: Some(at("2026-11-30T08:00:00+07:00")),
        overdue: false,
        resolved_at: None,
    }
}

#[test]
fn status_answers() {
    let answer = |f: StatusFacts<'_>| texts::status_answer(&f);
    expect!["Status aduan ADU-7K3M9QXP: terdisposisi, ditangani oleh Dinas Pekerjaan Umum. Batas waktu tindak lanjut: 30 November 2026 08.00 WIB."].assert_eq(&answer(facts(Status::Assigned)));
    expect!["Status aduan ADU-7K3M9QXP: ditindaklanjuti, ditangani oleh Dinas Pekerjaan Umum. Batas waktu tindak lanjut: 30 November 2026 08.00 WIB (terlambat; sudah kami teruskan ke pimpinan)."].assert_eq(&answer(StatusFacts { overdue: true, ..facts(Status::InProgress) }));
    expect!["Status aduan ADU-7K3M9QXP: menunggu identitas. Batas waktu tindak lanjut: 30 November 2026 08.00 WIB. Mohon lengkapi identitas Anda agar aduan dapat diteruskan."]
        .assert_eq(&answer(StatusFacts { opd: None, ..facts(Status::AwaitingIdentity) }));
    expect!["Status aduan ADU-7K3M9QXP: selesai, ditangani oleh Dinas Pekerjaan Umum. Selesai pada 29 November 2026 15.30 WIB."].assert_eq(&answer(StatusFacts {
        resolved_at: Some(at("2026-11-29T15:30:00+07:00")),
        ..facts(Status::Resolved)
    }));
    expect!["Status aduan ADU-7K3M9QXP: ditolak."]
        .assert_eq(&answer(StatusFacts { opd: None, ..facts(Status::Rejected) }));
    let live: TicketCode = "ADU-4TQW7RNM".parse().unwrap();
    expect!["Aduan ADU-7K3M9QXP sudah digabung ke aduan ADU-4TQW7RNM. Status aduan ADU-4TQW7RNM: baru, ditangani oleh Dinas Pekerjaan Umum. Batas waktu tindak lanjut: 30 November 2026 08.00 WIB."].assert_eq(&answer(StatusFacts { code: live, ..facts(Status::New) }));
}

#[test]
fn chat_answers() {
    expect!["Aduan dengan kode ADU-7K3M9QXP tidak ditemukan. Periksa kembali kode pada pesan tanda terima."].assert_eq(&texts::not_found(code()));
    expect!["Untuk melihat perkembangan aduan, kirim: CEK diikuti kode aduan Anda, misalnya CEK ADU-7K3M9QXP. Kodenya ada di pesan tanda terima kami."].assert_eq(texts::STATUS_HELP);
    expect!["Maaf, status aduan belum dapat ditampilkan. Silakan coba lagi beberapa saat lagi."]
        .assert_eq(texts::STATUS_UNAVAILABLE);
    expect![[r#"
        Halo! Ini layanan pengaduan masyarakat.

        Tulis aduan Anda langsung di sini: apa masalahnya dan di mana tempatnya. Anda juga bisa mengirim foto, dokumen, dan lokasi (📎 → Lokasi).

        Setiap aduan mendapat kode pelacakan, misalnya ADU-7K3M9QXP. Untuk melihat perkembangan aduan, kirim: CEK diikuti kodenya, misalnya CEK ADU-7K3M9QXP."#]].assert_eq(texts::BOT_START);
}

#[test]
fn delivery_labels() {
    let labels: Vec<&str> =
        ["sent", "delivered", "read", "failed", "pending", "sending", "published"]
            .into_iter()
            .map(texts::delivery_label)
            .collect();
    expect![[r#"["terkirim", "diterima", "dibaca", "gagal", "menunggu", "menunggu", "hanya di halaman lacak"]"#]]
        .assert_eq(&format!("{labels:?}"));
}

// --- windows: where an answer went and why ---

#[test]
fn delivery_notes() {
    use aduan_core::{DeliveryHop, OutboxState as S, UndeliverableReason as R};
    let hop = |channel, state, undeliverable, notice| DeliveryHop {
        channel,
        state,
        undeliverable,
        notice,
    };
    let labels: Vec<String> =
        R::ALL.iter().map(|r| texts::undeliverable_label(*r, Channel::Whatsapp)).collect();
    expect!["jendela WhatsApp 24 jam tertutup | warga memblokir atau berhenti berlangganan WhatsApp | alamat tidak terdaftar di WhatsApp | alamat WhatsApp tidak valid"].assert_eq(&labels.join(" | "));
    let closed = hop(Channel::Whatsapp, S::Undeliverable, Some(R::WindowClosed), false);
    expect!["terkirim via SMS: jendela WhatsApp 24 jam tertutup"].assert_eq(
        &texts::delivery_note(&[closed.clone(), hop(Channel::Sms, S::Sent, None, false)]).unwrap(),
    );
    expect!["dialihkan ke email: jendela WhatsApp 24 jam tertutup"].assert_eq(
        &texts::delivery_note(&[closed.clone(), hop(Channel::Email, S::Pending, None, false)])
            .unwrap(),
    );
    expect![
        "menunggu warga menulis lagi (jendela WhatsApp 24 jam tertutup; alamat SMS tidak valid)"
    ]
    .assert_eq(
        &texts::delivery_note(&[
            closed.clone(),
            hop(Channel::Sms, S::WaitingForResident, Some(R::RecipientInvalid), false),
        ])
        .unwrap(),
    );
    expect!["templat WhatsApp terkirim; jawaban lengkap menunggu warga menulis lagi (jendela WhatsApp 24 jam tertutup)"]
        .assert_eq(
            &texts::delivery_note(&[hop(
                Channel::Whatsapp,
                S::WaitingForResident,
                Some(R::WindowClosed),
                true,
            )])
            .unwrap(),
        );
    assert_eq!(texts::delivery_note(&[hop(Channel::Sms, S::Sent, None, false)]), None);
    expect!["Jawaban ini belum dapat kami kirim ke Anda. Kirim pesan ke kami di saluran mana pun, dan jawaban lengkap akan segera kami kirim."].assert_eq(texts::WAITING_PUBLIC);
}

#[test]
fn confirmation_texts() {
    expect!["Aduan ADU-7K3M9QXP sudah ditandai selesai oleh petugas. Apakah masalahnya sudah beres? Balas 1 jika sudah beres, 2 jika belum. Boleh tambahkan nilai 1–5 untuk layanan kami, misalnya: 1 5. Tanpa balasan dalam 3 hari kerja, aduan ini kami tutup."].assert_eq(&texts::confirm_request(code(), None, 3));
    expect!["Aduan ADU-7K3M9QXP sudah ditandai selesai oleh petugas. Apakah masalahnya sudah beres? Balas 1 jika sudah beres, 2 jika belum. Boleh tambahkan nilai 1–5 untuk layanan kami, misalnya: 1 5. Tanpa balasan dalam 3 hari kerja, aduan ini kami tutup. Bisa juga dijawab di https://aduan.example.id/lacak/ADU-7K3M9QXP?k=abc"].assert_eq(&texts::confirm_request(code(), Some("https://aduan.example.id/lacak/ADU-7K3M9QXP?k=abc"), 3));
    expect!["ditutup"].assert_eq(texts::status_label(Status::Closed));
    expect!["Ditutup"].assert_eq(texts::status_title(Status::Closed));
}

#[test]
fn open311_opd_services() {
    let keywords = ["jalan rusak".to_owned(), "jembatan".to_owned()];
    expect!["Aduan untuk Dinas Pekerjaan Umum, misalnya: jalan rusak, jembatan."]
        .assert_eq(&texts::open311_opd_service_description("Dinas Pekerjaan Umum", &keywords));
    expect!["Aduan untuk Inspektorat."]
        .assert_eq(&texts::open311_opd_service_description("Inspektorat", &[]));
    expect!["Perangkat Daerah"].assert_eq(texts::OPEN311_OPD_GROUP);
}

#[test]
fn officials_action_link_texts() {
    use aduan_core::action_link::OfficialAction as A;
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let labels: Vec<_> = A::ALL.iter().map(|a| texts::official_action_label(*a)).collect();
    expect![[r#"["Terima", "Bukan wewenang kami", "Minta info", "Selesai"]"#]]
        .assert_eq(&format!("{labels:?}"));
    let links = vec![
        (A::Accept, "https://aduan.example.id/aksi/t1".to_owned()),
        (A::Resolve, "https://aduan.example.id/aksi/t4".to_owned()),
    ];
    expect![[r#"
        Tindak lanjut satu klik (setiap tautan sekali pakai, berlaku sampai 7 Desember 2026 08.00 WIB; Anda akan diminta mengonfirmasi terlebih dahulu):
        - Terima: https://aduan.example.id/aksi/t1
        - Selesai: https://aduan.example.id/aksi/t4
    "#]]
    .assert_eq(&texts::action_links_block(&links, t("2026-12-07T08:00:00+07:00")));
    expect![[r#"
        Petugas Dinas Pekerjaan Umum membutuhkan keterangan tambahan tentang aduan ADU-7K3M9QXP:

        Di RT berapa?

        Mohon balas pesan ini dengan jawaban Anda."#]]
    .assert_eq(&texts::official_question(code(), "Dinas Pekerjaan Umum", " Di RT berapa? "));
    expect!["Bukan wewenang Dinas Pekerjaan Umum: urusan Dinkes"]
        .assert_eq(&texts::official_refusal_note("Dinas Pekerjaan Umum", "urusan Dinkes "));
    expect!["Aduan ini diterima dan mulai ditangani oleh DPU (status: diproses)."]
        .assert_eq(&texts::official_action_effect(A::Accept, "DPU"));
    expect!["Aduan ini dikembalikan ke petugas pengaduan untuk didisposisikan ulang, dengan catatan bahwa DPU menyatakan bukan wewenangnya. Mohon tuliskan alasannya."]
        .assert_eq(&texts::official_action_effect(A::NotOurs, "DPU"));
    expect!["Pertanyaan Anda dikirim kepada pelapor melalui saluran yang ia gunakan; batas waktu aduan berhenti sampai pelapor menjawab."]
        .assert_eq(&texts::official_action_effect(A::AskInfo, "DPU"));
    expect!["Aduan ini ditandai selesai. Catatan Anda dikirim kepada pelapor sebagai jawaban, dan pelapor diminta mengonfirmasi."]
        .assert_eq(&texts::official_action_effect(A::Resolve, "DPU"));
    let fields: Vec<_> = A::ALL.iter().map(|a| texts::official_action_field(*a)).collect();
    expect![[r#"[None, Some("Alasan (wajib)"), Some("Pertanyaan untuk pelapor (wajib)"), Some("Catatan penyelesaian untuk pelapor (wajib)")]"#]]
        .assert_eq(&format!("{fields:?}"));
    expect!["Tautan ini sudah digunakan. Setiap tautan hanya dapat dipakai sekali."]
        .assert_eq(texts::ACTION_LINK_USED);
    expect!["Tautan ini sudah kedaluwarsa. Silakan tindak lanjuti aduan melalui kotak masuk, atau balas email pemberitahuan."]
        .assert_eq(texts::ACTION_LINK_EXPIRED);
    expect!["Tautan ini tidak sah. Gunakan tautan dari email pemberitahuan, tanpa diubah."]
        .assert_eq(texts::ACTION_LINK_INVALID);
    expect!["Aduan ini sudah tidak ditangani OPD Anda, sehingga tautan ini tidak berlaku lagi."]
        .assert_eq(texts::ACTION_LINK_OTHER_OPD);
    expect!["Tindakan ini tidak dapat dilakukan karena aduan berstatus selesai."]
        .assert_eq(&texts::action_link_not_now(Status::Resolved));
}

#[test]
fn the_daily_digest() {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let line = |due: Option<&str>| texts::DigestLine {
        code: code(),
        category: Some("Jalan dan jembatan".into()),
        place: Some("Kedungwringin".into()),
        due: due.map(t),
        links: "- Terima: https://aduan.example.id/aksi/t1\n".into(),
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    expect![[r#"
        Ringkasan harian aduan untuk Dinas Pekerjaan Umum, 7 Desember 2026

        Yth. Kepala Dinas Pekerjaan Umum,

        Berikut aduan yang perlu perhatian hari ini: 1 baru, 0 melewati batas waktu, 1 jatuh tempo hari ini.

        == Aduan baru sejak ringkasan terakhir (1) ==

        [ADU-7K3M9QXP] Jalan dan jembatan, Kedungwringin (batas: 7 Desember 2026 16.00 WIB)
        - Terima: https://aduan.example.id/aksi/t1

        == Melewati batas waktu (0) ==
        (tidak ada)

        == Jatuh tempo hari ini (1) ==

        [ADU-7K3M9QXP] Jalan dan jembatan, Kedungwringin
        - Terima: https://aduan.example.id/aksi/t1
    "#]]
    .assert_eq(&texts::daily_digest(
        "Dinas Pekerjaan Umum",
        day,
        &[line(Some("2026-12-07T16:00:00+07:00"))],
        &[],
        &[line(None)],
    ));
}

#[test]
fn incident_texts() {
    expect!["dilaporkan oleh 12 warga"].assert_eq(&texts::reported_by(12));
}
