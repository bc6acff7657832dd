//! The mails officials and admins get: the disposition of a ticket to their OPD, the
//! warning before a deadline, the escalation after it. In Indonesian, with the tracking code
//! on the first line (a reply quoting it lands on the ticket).
//!
//! Privacy: phone numbers, NIK and email addresses in the complaint are masked; the reporter
//! is named only when they did not ask for *rahasia*, and never with their contacts.

use aduan_core::texts::local_time;
use aduan_core::{ClockKind, TicketCode, privacy};
use chrono::{DateTime, Utc};

/// Masks phone numbers, NIK and email addresses: the one masking of
/// [`aduan_core::privacy`], which the ticket API and pages use for officials too.
pub use aduan_core::privacy::mask_personal;

/// The resident's messages as officials may read them: answers to the identity request
/// (a later message that gives a name or an address) are left out, and a confidential
/// reporter's name and address are masked wherever they still appear
/// ([`aduan_core::privacy::for_officials`]; contacts are masked by [`mask_personal`] when
/// the mail is written).
pub fn complaint_texts(
    texts: &[String],
    reporter_name: Option<&str>,
    reporter_address: Option<&str>,
    confidential: bool,
) -> Vec<String> {
    let who = privacy::Reporter { name: reporter_name, address: reporter_address, confidential };
    texts
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || !privacy::is_identity_answer(t))
        .map(|(_, t)| privacy::for_officials(t, &who))
        .collect()
}

/// What a notification says about its ticket.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub code: TicketCode,
    pub opd_name: Option<&'a str>,
    pub category_name: Option<&'a str>,
    pub place: Option<String>,
    pub created_at: DateTime<Utc>,
    pub first_response_due: Option<DateTime<Utc>>,
    pub resolution_due: Option<DateTime<Utc>>,
    /// The complaint as officials may read it (see [`complaint_texts`]).
    pub texts: Vec<String>,
    pub reporter_name: Option<&'a str>,
    pub confidential: bool,
    /// Where the ticket is in the web inbox (`{public_url}/tickets/{code}`).
    pub link: String,
}

fn body(n: &Notice<'_>, out: &mut String) {
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:<22}: {v}\n"));
    line(out, "Kode aduan", &n.code.to_string());
    if let Some(c) = n.category_name {
        line(out, "Kategori", c);
    }
    if let Some(p) = &n.place {
        line(out, "Lokasi", p);
    }
    line(out, "Diterima", &local_time(n.created_at));
    if let Some(d) = n.first_response_due {
        line(out, "Batas tanggapan", &local_time(d));
    }
    if let Some(d) = n.resolution_due {
        line(out, "Batas penyelesaian", &local_time(d));
    }
    let reporter = match (n.confidential, n.reporter_name) {
        (true, _) => "dirahasiakan atas permintaan pelapor",
        (false, Some(name)) => name,
        (false, None) => "tidak menyebutkan nama",
    };
    line(out, "Pelapor", reporter);
    out.push_str("\nIsi aduan:\n");
    for t in &n.texts {
        for l in mask_personal(t).lines() {
            out.push_str("> ");
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str(&format!("\nLihat dan tindak lanjuti: {}\n", n.link));
}

/// The ticket as sent to the OPD it was disposed to.
pub fn disposition_text(n: &Notice<'_>) -> String {
    let mut s = format!(
        "[{}] Aduan baru untuk {}\n\nYth. Bapak/Ibu pejabat penghubung,\n\nAduan masyarakat \
         berikut didisposisikan kepada {}. Mohon ditanggapi sebelum batas waktu. Balas email \
         ini untuk menjawab pelapor: jawaban Anda dicatat pada aduan dan diteruskan kepada \
         pelapor melalui saluran yang ia gunakan.\n\n",
        n.code,
        n.opd_name.unwrap_or("OPD"),
        n.opd_name.unwrap_or("OPD Anda")
    );
    body(n, &mut s);
    s
}

/// The resident's new messages on a ticket already with the OPD (an answer to *minta
/// info*, a reopening, more detail), relayed to its officials; `new` as officials may read
/// them ([`complaint_texts`]), the rest of the ticket below as in the disposition.
pub fn follow_up_text(n: &Notice<'_>, new: &[String]) -> String {
    let mut s = format!(
        "[{}] Keterangan tambahan dari pelapor\n\nYth. Bapak/Ibu pejabat penghubung,\n\n\
         Pelapor menulis lagi pada aduan yang sedang ditangani {}. Balas email ini untuk \
         menjawab pelapor.\n\nPesan baru dari pelapor:\n",
        n.code,
        n.opd_name.unwrap_or("OPD Anda")
    );
    for t in new {
        let t = if t.trim().is_empty() {
            "(tanpa teks; lihat lampiran pada tautan di bawah)"
        } else {
            t
        };
        for l in mask_personal(t).lines() {
            s.push_str("> ");
            s.push_str(l);
            s.push('\n');
        }
        s.push('\n');
    }
    body(n, &mut s);
    s
}

/// The reminder before a deadline.
pub fn warning_text(n: &Notice<'_>, clock: ClockKind, due: DateTime<Utc>) -> String {
    let mut s = format!(
        "[{}] Pengingat: batas waktu {} aduan segera berakhir\n\nBatas waktu {} aduan ini \
         berakhir {}. Mohon segera ditanggapi; balas email ini untuk menjawab pelapor.\n\n",
        n.code,
        clock.label_id(),
        clock.label_id(),
        local_time(due)
    );
    body(n, &mut s);
    s
}

/// The escalation after a breach, to the head of the OPD and the admins.
pub fn escalation_text(n: &Notice<'_>, clock: ClockKind, due: DateTime<Utc>) -> String {
    let mut s = format!(
        "[{}] Eskalasi: batas waktu {} aduan terlampaui\n\nYth. Kepala {} dan admin \
         pengaduan,\n\nBatas waktu {} aduan berikut telah berakhir {} tanpa {}. Mohon \
         perhatian dan tindak lanjut segera.\n\n",
        n.code,
        clock.label_id(),
        n.opd_name.unwrap_or("OPD (belum didisposisikan)"),
        clock.label_id(),
        local_time(due),
        match clock {
            ClockKind::FirstResponse => "tanggapan",
            ClockKind::Resolution => "penyelesaian",
        }
    );
    body(n, &mut s);
    s
}

/// The alert to the admins when a notification to officials could not be delivered after
/// every retry (see [`crate::worker::Routing::revive_once`]): which ticket, what kind of
/// notification, to whom, and the last error (provider codes only, never message text).
pub fn undelivered_text(d: &aduan_store::DeadNotification, link: &str) -> String {
    let what = match d.purpose {
        aduan_core::Purpose::Disposition => "disposisi",
        aduan_core::Purpose::Warning => "pengingat batas waktu",
        aduan_core::Purpose::Escalation => "eskalasi",
        _ => "pemberitahuan",
    };
    format!(
        "[{code}] Pemberitahuan gagal terkirim\n\nYth. admin pengaduan,\n\nPemberitahuan {what} untuk \
         aduan {code} kepada {to} tidak dapat dikirim setelah beberapa kali dicoba ulang. \
         Mohon hubungi penerimanya dengan cara lain dan periksa alamatnya.\n\n\
         Kesalahan terakhir   : {error}\n\nLihat aduan: {link}\n",
        code = d.ticket,
        to = d.recipient.value,
        error = d.last_error.as_deref().unwrap_or("tidak diketahui"),
    )
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn personal_data_is_masked() {
        expect![[r#"hubungi saya di [nomor disamarkan] atau [nomor disamarkan], NIK [NIK disamarkan], email [email disamarkan]. RT 02 tahun 2026"#]]
        .assert_eq(&mask_personal(
            "hubungi saya di 081234567890 atau 0812 3456 7890, NIK 3302011234567890, email siti@example.id. RT 02 tahun 2026",
        ));
    }

    #[test]
    fn the_disposition_mail() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let texts = vec!["Jalan berlubang di Desa Kedungwringin, hubungi 081234567890".to_owned()];
        let n = Notice {
            code: TicketCode::from_entropy([1, 2, 3, 4, 5]),
            opd_name: Some("Dinas Pekerjaan Umum"),
            category_name: Some("Jalan dan jembatan"),
            place: Some("Kedungwringin, Kec. Jatilawang".into()),
            created_at: t("2026-11-30T08:00:00+07:00"),
            first_response_due: Some(t("2026-12-01T08:00:00+07:00")),
            resolution_due: Some(t("2026-12-14T08:00:00+07:00")),
            texts,
            reporter_name: Some("Siti"),
            confidential: true,
            link: "https://aduan.example.go.id/tickets/ADU-04106105".into(),
        };
        expect![[r#"
            [ADU-04106105] Aduan baru untuk Dinas Pekerjaan Umum

            Yth. Bapak/Ibu pejabat penghubung,

            Aduan masyarakat berikut didisposisikan kepada Dinas Pekerjaan Umum. Mohon ditanggapi sebelum batas waktu. Balas email ini untuk menjawab pelapor: jawaban Anda dicatat pada aduan dan diteruskan kepada pelapor melalui saluran yang ia gunakan.

            Kode aduan            : ADU-04106105
            Kategori              : Jalan dan jembatan
            Lokasi                : Kedungwringin, Kec. Jatilawang
            Diterima              : 30 November 2026 08.00 WIB
            Batas tanggapan       : 1 Desember 2026 08.00 WIB
            Batas penyelesaian    : 14 Desember 2026 08.00 WIB
            Pelapor               : dirahasiakan atas permintaan pelapor

            Isi aduan:
            > Jalan berlubang di Desa Kedungwringin, hubungi [nomor disamarkan]

            Lihat dan tindak lanjuti: https://aduan.example.go.id/tickets/ADU-04106105
        "#]]
        .assert_eq(&disposition_text(&n));
    }
}
