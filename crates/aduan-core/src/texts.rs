//! Every word aduan says to residents, in one place.
//!
//! Residents read aduan on many channels (SMS, email, chat, the public tracking page); they
//! must meet the same words everywhere. This module is the only source of:
//!
//! - status labels ([`status_label`] in a sentence, [`status_title`] in a table or heading);
//!   the words are those of the product spec: baru, menunggu identitas, terdisposisi,
//!   ditindaklanjuti, selesai, ditolak, digabung, and ditutup (`closed`, issue 17);
//! - the confirmation question to the resident ([`confirm_request`]) and the words of the
//!   confirmation form on `/lacak` ([`CONFIRM_TITLE`] …);
//! - receipts: the configured template rendered ([`receipt`]), and the one-part SMS receipt
//!   built from the code and the deadline ([`sms_receipt`]); [`receipt_on`] picks between
//!   them for a channel;
//! - the identity request ([`identity_request`]);
//! - the answer to "CEK ADU-…" on every channel ([`status_answer`] from [`StatusFacts`]), and
//!   the chat bot's fixed answers ([`BOT_START`], [`STATUS_HELP`], [`STATUS_UNAVAILABLE`],
//!   [`not_found`]);
//! - local time as people read it ([`local_time`]: `30 November 2026 08.00 WIB`, at the
//!   office's display offset, see [`crate::time`]).
//!
//! Everything here is pure. `crates/aduan-core/tests/texts.rs` holds the exact expected
//! string of every text, so a change of wording is a visible diff in review.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::{Channel, IdentityField, Status, TicketCode};

// ---- Status labels ----

/// The status in a sentence ("Status aduan ADU-…: terdisposisi").
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::New => "baru",
        Status::AwaitingIdentity => "menunggu identitas",
        Status::Assigned => "terdisposisi",
        Status::InProgress => "ditindaklanjuti",
        Status::Resolved => "selesai",
        Status::Rejected => "ditolak",
        Status::Merged => "digabung",
        Status::Closed => "ditutup",
    }
}

/// The status as a table cell or heading: the same word, capitalised ("Terdisposisi").
pub fn status_title(s: Status) -> &'static str {
    match s {
        Status::New => "Baru",
        Status::AwaitingIdentity => "Menunggu identitas",
        Status::Assigned => "Terdisposisi",
        Status::InProgress => "Ditindaklanjuti",
        Status::Resolved => "Selesai",
        Status::Rejected => "Ditolak",
        Status::Merged => "Digabung",
        Status::Closed => "Ditutup",
    }
}

/// What kind of address an identity is, as the ticket page names it ("telepon: +62…").
pub fn identity_title(kind: crate::IdentityKind) -> &'static str {
    use crate::IdentityKind as K;
    match kind {
        K::Email => "email",
        K::Phone => "telepon",
        K::Telegram => "Telegram",
        K::MessengerPsid => "Messenger",
        K::InstagramId => "Instagram",
        K::Whatsapp => "WhatsApp",
        K::XUser => "X",
        K::AppUser => "akun aplikasi",
    }
}

/// In place of an OPD on the tracking page while no OPD handles the ticket.
pub const NO_OPD_YET: &str = "belum didisposisikan";

// ---- Local time ----

const MONTHS: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

/// The zone's name: WIB, WITA, WIT, else the offset (`UTC+05:30`).
fn zone_name(offset: chrono::FixedOffset) -> String {
    match offset.local_minus_utc() {
        25_200 => "WIB".to_owned(),
        28_800 => "WITA".to_owned(),
        32_400 => "WIT".to_owned(),
        _ => format!("UTC{offset}"),
    }
}

/// A time as people read it, at the office's offset: `30 November 2026 08.00 WIB`. The
/// one format of pages, chat answers and SMS.
pub fn local_time(t: DateTime<Utc>) -> String {
    let offset = crate::time::display_offset();
    let local = t.with_timezone(&offset);
    format!(
        "{} {} {} {:02}.{:02} {}",
        local.day(),
        MONTHS[local.month0() as usize],
        local.year(),
        local.hour(),
        local.minute(),
        zone_name(offset)
    )
}

// ---- Receipts ----

/// The default receipt template; `{code}` and `{hours}` are filled in.
pub const DEFAULT_ACK_TEMPLATE: &str = "Terima kasih, aduan Anda sudah kami terima dengan kode {code}. \
Aduan akan kami tindak lanjuti paling lambat {hours} jam. Untuk melihat perkembangannya, \
kirim: CEK {code}";

/// The receipt a resident gets when their message opens a ticket: `template` (the
/// `[intake] ack_text`) with `{code}` and `{hours}` filled in.
pub fn receipt(template: &str, code: TicketCode, hours: i64) -> String {
    template.replace("{code}", &code.to_string()).replace("{hours}", &hours.to_string())
}

/// The receipt in one SMS part (GSM-7, at most 160 characters), from the data: code and
/// first-response deadline in hours (`None` leaves the deadline out).
pub fn sms_receipt(code: TicketCode, hours: Option<i64>) -> String {
    match hours {
        Some(h) => format!(
            "Aduan Anda diterima dengan kode {code}. Ditindaklanjuti paling lambat {h} jam. \
             Cek perkembangan: kirim CEK {code}"
        ),
        None => {
            format!("Aduan Anda diterima dengan kode {code}. Cek perkembangan: kirim CEK {code}")
        }
    }
}

/// The receipt as sent on `channel`: the rendered template, except on SMS when it would take
/// more than one part (the default template does): then [`sms_receipt`], so a resident pays
/// for and reads one message.
pub fn receipt_on(channel: Channel, template: &str, code: TicketCode, hours: i64) -> String {
    let full = receipt(template, code, hours);
    if channel == Channel::Sms && !fits_one_sms(&full) {
        return sms_receipt(code, Some(hours));
    }
    full
}

/// Surely one GSM-7 SMS part: at most 160 characters, each of them one septet of the GSM
/// 03.38 basic alphabet. Conservative: a text with other characters (which may still fit)
/// counts as not fitting.
pub fn fits_one_sms(text: &str) -> bool {
    text.chars().count() <= 160
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " \n!\"#$%&'()*+,-./:;<=>?@_".contains(c))
}

// ---- Identity ----

/// What a missing part of the identity is called in the request.
pub fn identity_field_label(f: IdentityField) -> &'static str {
    match f {
        IdentityField::Name => "nama lengkap",
        IdentityField::Contact => "nomor HP atau email yang bisa dihubungi",
        IdentityField::Address => "alamat (desa/kelurahan dan kecamatan)",
    }
}

/// The request for the missing parts of the reporter's identity, automatic or sent by an
/// operator without a text of their own. No parts named asks for name and address.
pub fn identity_request(code: TicketCode, missing: &[IdentityField]) -> String {
    let fields: Vec<&str> = missing.iter().map(|f| identity_field_label(*f)).collect();
    let asked = match fields.as_slice() {
        [] => "nama lengkap dan alamat (desa/kecamatan)".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} dan {last}", init.join(", ")),
    };
    format!(
        "Aduan Anda ({code}) sudah kami terima. Agar dapat ditindaklanjuti, mohon balas pesan \
         ini dengan {asked}, contoh: \"Nama: Budi Santoso, Alamat: Desa Kedungwringin, Kec. \
         Jatilawang\". Jika identitas Anda ingin dirahasiakan, tambahkan kata RAHASIA; \
         identitas Anda tidak akan diteruskan ke dinas."
    )
}

// ---- Status answers ----

/// What the answer to "CEK {asked}" says: nothing personal (no names, no message text), as
/// anyone who knows a code may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFacts<'a> {
    /// The code the resident sent.
    pub asked: TicketCode,
    /// The ticket answered for: `asked`, or the ticket it was merged into.
    pub code: TicketCode,
    pub status: Status,
    /// The handling OPD's name (its code when it has no name).
    pub opd: Option<&'a str>,
    /// The deadline that runs now: first response, then resolution.
    pub due: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The answer to "CEK {code}", on every channel, in one paragraph (it goes by SMS too).
pub fn status_answer(f: &StatusFacts<'_>) -> String {
    let mut s = String::new();
    if f.asked != f.code {
        s.push_str(&format!("Aduan {} sudah digabung ke aduan {}. ", f.asked, f.code));
    }
    s.push_str(&format!("Status aduan {}: {}", f.code, status_label(f.status)));
    if let Some(opd) = f.opd {
        s.push_str(&format!(", ditangani oleh {opd}"));
    }
    s.push('.');
    if f.status.is_open()
        && let Some(due) = f.due
    {
        s.push_str(&format!(" Batas waktu tindak lanjut: {}", local_time(due)));
        if f.overdue {
            s.push_str(" (terlambat; sudah kami teruskan ke pimpinan)");
        }
        s.push('.');
    }
    if f.status == Status::Resolved
        && let Some(at) = f.resolved_at
    {
        s.push_str(&format!(" Selesai pada {}.", local_time(at)));
    }
    if f.status == Status::AwaitingIdentity {
        s.push_str(" Mohon lengkapi identitas Anda agar aduan dapat diteruskan.");
    }
    s
}

/// The answer to "CEK" with a code nobody was given.
pub fn not_found(code: TicketCode) -> String {
    format!(
        "Aduan dengan kode {code} tidak ditemukan. Periksa kembali kode pada pesan tanda terima."
    )
}

/// The answer to "CEK" without a code.
pub const STATUS_HELP: &str = "Untuk melihat perkembangan aduan, kirim: CEK diikuti \
kode aduan Anda, misalnya CEK ADU-7K3M9QXP. Kodenya ada di pesan tanda terima kami.";

/// The answer to "CEK" when the tickets can't be read right now.
pub const STATUS_UNAVAILABLE: &str =
    "Maaf, status aduan belum dapat ditampilkan. Silakan coba lagi beberapa saat lagi.";

/// The chat bot's greeting (Telegram `/start`).
pub const BOT_START: &str = "Halo! Ini layanan pengaduan masyarakat.\n\n\
Tulis aduan Anda langsung di sini: apa masalahnya dan di mana tempatnya. Anda juga bisa \
mengirim foto, dokumen, dan lokasi (📎 → Lokasi).\n\n\
Setiap aduan mendapat kode pelacakan, misalnya ADU-7K3M9QXP. Untuk melihat perkembangan \
aduan, kirim: CEK diikuti kodenya, misalnya CEK ADU-7K3M9QXP.";

// --- receipts: how an answer fared, as the ticket page shows it ---

/// The label of a delivery status (`DeliveryView::status`) on the ticket page: `terkirim`,
/// `diterima`, `dibaca`, `gagal`; `menunggu` before it went out, `hanya di halaman lacak`
/// for an answer published on the tracking page only.
pub fn delivery_label(status: &str) -> &'static str {
    match status {
        "sent" => "terkirim",
        "delivered" => "diterima",
        "read" => "dibaca",
        "failed" => "gagal",
        "published" => "hanya di halaman lacak",
        _ => "menunggu",
    }
}

// --- windows: where an answer went and why ---

/// A channel's name as residents and operators know it.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "SMS",
        Channel::Telegram => "Telegram",
        Channel::Whatsapp => "WhatsApp",
        Channel::Messenger => "Messenger",
        Channel::Instagram => "Instagram",
        Channel::X => "X",
        Channel::Web => "web",
        Channel::Open311 => "Open311",
    }
}

/// The operator's label for why an answer could not be delivered on `channel`.
pub fn undeliverable_label(reason: crate::UndeliverableReason, channel: Channel) -> String {
    use crate::UndeliverableReason as R;
    let name = channel_name(channel);
    match reason {
        R::WindowClosed => format!("jendela {name} 24 jam tertutup"),
        R::Blocked => format!("warga memblokir atau berhenti berlangganan {name}"),
        R::NotOnChannel => format!("alamat tidak terdaftar di {name}"),
        R::RecipientInvalid => format!("alamat {name} tidak valid"),
    }
}

/// An answer that went out on another channel than the first one tried.
pub fn sent_via(channel: Channel, because: &str) -> String {
    format!("terkirim via {}: {because}", channel_name(channel))
}

/// An answer kept until the resident writes again (every channel was tried).
pub const WAITING_FOR_RESIDENT: &str = "menunggu warga menulis lagi";

/// A WhatsApp template went out instead of the answer; the answer follows when the resident
/// writes again.
pub const TEMPLATE_SENT: &str =
    "templat WhatsApp terkirim; jawaban lengkap menunggu warga menulis lagi";

/// On the public tracking page, next to an answer that could not be delivered yet.
pub const WAITING_PUBLIC: &str = "Jawaban ini belum dapat kami kirim ke Anda. Kirim pesan ke \
kami di saluran mana pun, dan jawaban lengkap akan segera kami kirim.";

/// The operator's line for an answer that did not simply go where it was sent (`None` when
/// it did): `terkirim via SMS: jendela WhatsApp 24 jam tertutup`, `menunggu warga menulis
/// lagi (…)`.
pub fn delivery_note(hops: &[crate::DeliveryHop]) -> Option<String> {
    use crate::OutboxState as S;
    let last = hops.last()?;
    let reasons: Vec<String> = hops
        .iter()
        .filter_map(|h| h.undeliverable.map(|r| undeliverable_label(r, h.channel)))
        .collect();
    let because = reasons.last()?.clone();
    Some(match last.state {
        S::WaitingForResident if last.notice => format!("{TEMPLATE_SENT} ({because})"),
        S::WaitingForResident => format!("{WAITING_FOR_RESIDENT} ({})", reasons.join("; ")),
        S::Sent => sent_via(last.channel, &because),
        S::Undeliverable | S::Dead => because,
        _ => format!("dialihkan ke {}: {because}", channel_name(last.channel)),
    })
}

// ---- Confirmation by the resident (issue 17 item 4) ----

/// The question sent to the resident when their ticket becomes `resolved`: answer 1 (fixed)
/// or 2 (not fixed), optionally with a rating 1–5; `link` is their own confirmation page
/// (`/lacak/{code}?k=…`), `days` the working days before silence closes the ticket.
pub fn confirm_request(code: TicketCode, link: Option<&str>, days: u32) -> String {
    let mut s = format!(
        "Aduan {code} sudah ditandai selesai oleh petugas. Apakah masalahnya sudah beres? \
         Balas 1 jika sudah beres, 2 jika belum. Boleh tambahkan nilai 1–5 untuk layanan kami, \
         misalnya: 1 5. Tanpa balasan dalam {days} hari kerja, aduan ini kami tutup."
    );
    if let Some(link) = link {
        s.push_str(&format!(" Bisa juga dijawab di {link}"));
    }
    s
}

/// The heading of the confirmation form on the tracking page.
pub const CONFIRM_TITLE: &str = "Apakah masalahnya sudah beres?";

/// The two answers of the confirmation form.
pub const CONFIRM_FIXED: &str = "Sudah beres";
pub const CONFIRM_NOT_FIXED: &str = "Belum beres";

/// The optional rating of the confirmation form.
pub const CONFIRM_RATING: &str = "Nilai layanan (1–5, boleh dikosongkan)";

/// Shown on the tracking page after the resident answered there.
pub const CONFIRM_THANKS: &str = "Terima kasih, jawaban Anda sudah kami terima.";

/// Shown to a visitor of the tracking page while the resident's confirmation is pending.
pub const CONFIRM_PENDING: &str = "Menunggu konfirmasi pelapor.";

// --- rules: Open311 services of a registry without categories ---

/// The description of the Open311 service of an OPD (a registry without categories): what
/// its complaints are about, from its routing keywords.
pub fn open311_opd_service_description(name: &str, keywords: &[String]) -> String {
    if keywords.is_empty() {
        format!("Aduan untuk {name}.")
    } else {
        format!("Aduan untuk {name}, misalnya: {}.", keywords.join(", "))
    }
}

/// The group of the Open311 services of OPDs.
pub const OPEN311_OPD_GROUP: &str = "Perangkat Daerah";

// ---- Officials' action links and the daily digest (issue 19 item 5) ----

/// The label of an official's one-click action, in mails and on the confirmation page.
pub fn official_action_label(action: crate::action_link::OfficialAction) -> &'static str {
    use crate::action_link::OfficialAction as A;
    match action {
        A::Accept => "Terima",
        A::NotOurs => "Bukan wewenang kami",
        A::AskInfo => "Minta info",
        A::Resolve => "Selesai",
    }
}

/// What an action does, on the confirmation page (`opd` the OPD's name).
pub fn official_action_effect(action: crate::action_link::OfficialAction, opd: &str) -> String {
    use crate::action_link::OfficialAction as A;
    match action {
        A::Accept => {
            format!("Aduan ini diterima dan mulai ditangani oleh {opd} (status: diproses).")
        }
        A::NotOurs => format!(
            "Aduan ini dikembalikan ke petugas pengaduan untuk didisposisikan ulang, dengan \
             catatan bahwa {opd} menyatakan bukan wewenangnya. Mohon tuliskan alasannya."
        ),
        A::AskInfo => "Pertanyaan Anda dikirim kepada pelapor melalui saluran yang ia gunakan; \
             batas waktu aduan berhenti sampai pelapor menjawab."
            .to_owned(),
        A::Resolve => "Aduan ini ditandai selesai. Catatan Anda dikirim kepada pelapor sebagai \
             jawaban, dan pelapor diminta mengonfirmasi."
            .to_owned(),
    }
}

/// The label of the text field an action needs (`None` for *terima*).
pub fn official_action_field(action: crate::action_link::OfficialAction) -> Option<&'static str> {
    use crate::action_link::OfficialAction as A;
    match action {
        A::Accept => None,
        A::NotOurs => Some("Alasan (wajib)"),
        A::AskInfo => Some("Pertanyaan untuk pelapor (wajib)"),
        A::Resolve => Some("Catatan penyelesaian untuk pelapor (wajib)"),
    }
}

/// The block of one-click links at the end of a mail to officials.
pub fn action_links_block(
    links: &[(crate::action_link::OfficialAction, String)],
    valid_until: DateTime<Utc>,
) -> String {
    let mut s = format!(
        "Tindak lanjut satu klik (setiap tautan sekali pakai, berlaku sampai {}; Anda akan \
         diminta mengonfirmasi terlebih dahulu):\n",
        local_time(valid_until)
    );
    for (action, url) in links {
        s.push_str(&format!("- {}: {url}\n", official_action_label(*action)));
    }
    s
}

/// The question an official asked through *minta info*, as the resident receives it.
pub fn official_question(code: TicketCode, opd: &str, question: &str) -> String {
    format!(
        "Petugas {opd} membutuhkan keterangan tambahan tentang aduan {code}:\n\n{}\n\nMohon \
         balas pesan ini dengan jawaban Anda.",
        question.trim()
    )
}

/// The audit note when an OPD sends a ticket back as not theirs.
pub fn official_refusal_note(opd: &str, reason: &str) -> String {
    format!("Bukan wewenang {opd}: {}", reason.trim())
}

/// The confirmation page after the action was taken.
pub const OFFICIAL_ACTION_DONE: &str = "Terima kasih, tindakan Anda sudah dicatat pada aduan.";
/// A link with a bad signature or that can't be read.
pub const ACTION_LINK_INVALID: &str =
    "Tautan ini tidak sah. Gunakan tautan dari email pemberitahuan, tanpa diubah.";
/// A link past its expiry.
pub const ACTION_LINK_EXPIRED: &str = "Tautan ini sudah kedaluwarsa. Silakan tindak lanjuti \
     aduan melalui kotak masuk, atau balas email pemberitahuan.";
/// A link used before.
pub const ACTION_LINK_USED: &str = "Tautan ini sudah digunakan. Setiap tautan hanya dapat \
     dipakai sekali.";
/// The ticket is no longer with the link's OPD.
pub const ACTION_LINK_OTHER_OPD: &str =
    "Aduan ini sudah tidak ditangani OPD Anda, sehingga tautan ini tidak berlaku lagi.";
/// The action is not possible in the ticket's status (`status` its label).
pub fn action_link_not_now(status: Status) -> String {
    format!("Tindakan ini tidak dapat dilakukan karena aduan berstatus {}.", status_label(status))
}
/// The text field was left empty.
pub const ACTION_LINK_NEEDS_TEXT: &str = "Mohon isi kolom yang diwajibkan.";

/// One ticket line of the daily digest.
#[derive(Debug, Clone)]
pub struct DigestLine {
    pub code: TicketCode,
    pub category: Option<String>,
    pub place: Option<String>,
    pub due: Option<DateTime<Utc>>,
    /// The block of action links for this ticket (see [`action_links_block`]).
    pub links: String,
}

/// The daily digest to an OPD head: new since the last digest, overdue, due today.
pub fn daily_digest(
    opd: &str,
    day: chrono::NaiveDate,
    new: &[DigestLine],
    overdue: &[DigestLine],
    due_today: &[DigestLine],
) -> String {
    let mut s = format!(
        "Ringkasan harian aduan untuk {opd}, {}\n\nYth. Kepala {opd},\n\nBerikut aduan yang \
         perlu perhatian hari ini: {} baru, {} melewati batas waktu, {} jatuh tempo hari ini.\n",
        date_id(day),
        new.len(),
        overdue.len(),
        due_today.len()
    );
    for (title, lines) in [
        ("Aduan baru sejak ringkasan terakhir", new),
        ("Melewati batas waktu", overdue),
        ("Jatuh tempo hari ini", due_today),
    ] {
        s.push_str(&format!("\n== {title} ({}) ==\n", lines.len()));
        if lines.is_empty() {
            s.push_str("(tidak ada)\n");
        }
        for l in lines {
            s.push_str(&format!("\n[{}]", l.code));
            if let Some(c) = &l.category {
                s.push_str(&format!(" {c}"));
            }
            if let Some(p) = &l.place {
                s.push_str(&format!(", {p}"));
            }
            if let Some(d) = l.due {
                s.push_str(&format!(" (batas: {})", local_time(d)));
            }
            s.push('\n');
            s.push_str(&l.links);
        }
    }
    s
}

fn date_id(day: chrono::NaiveDate) -> String {
    format!("{} {} {}", day.day(), MONTHS[day.month0() as usize], day.year())
}

/// The tracking page of a ticket whose problem several residents reported (issue 20):
/// "dilaporkan oleh 12 warga".
pub fn reported_by(residents: i64) -> String {
    format!("dilaporkan oleh {residents} warga")
}
