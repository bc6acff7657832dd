//! The mails officials and admins get: the disposition of a ticket to their OPD, the
//! warning before a deadline, the escalation after it. In Indonesian, with the tracking code
//! on the first line (a reply quoting it lands on the ticket).
//!
//! Privacy: phone numbers, NIK and email addresses in the complaint are masked; the reporter
//! is named only when they did not ask for *rahasia*, and never with their contacts.

use aduan_core::{ClockKind, TicketCode, format_id};
use chrono::{DateTime, Utc};

/// Masks phone numbers (9 to 15 digits, separators allowed), 16-digit NIK and email
/// addresses.
pub fn mask_personal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split_inclusive(char::is_whitespace).enumerate() {
        let _ = i;
        let word = token.trim_end();
        let tail = &token[word.len()..];
        let core = word.trim_matches(|c: char| matches!(c, ',' | '.' | ';' | ':' | '(' | ')'));
        if core.contains('@') && core.split('@').all(|p| !p.is_empty()) {
            out.push_str(&word.replace(core, "[email disamarkan]"));
        } else {
            let digits = core.chars().filter(char::is_ascii_digit).count();
            let numeric = !core.is_empty()
                && core.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
            if numeric && digits == 16 && core.chars().all(|c| c.is_ascii_digit()) {
                out.push_str(&word.replace(core, "[NIK disamarkan]"));
            } else if numeric && (9..=15).contains(&digits) {
                out.push_str(&word.replace(core, "[nomor disamarkan]"));
            } else {
                out.push_str(word);
            }
        }
        out.push_str(tail);
    }
    // Numbers written in groups ("0812 3456 7890").
    mask_grouped_phones(&out)
}

fn mask_grouped_phones(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let core = |w: &str| w.trim_end_matches([',', '.', ';', ':', ')']).to_owned();
    let is_group = |w: &str| {
        let w = core(w);
        !w.is_empty() && w.len() <= 5 && w.chars().all(|c| c.is_ascii_digit() || c == '+')
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if is_group(words[i]) && (words[i].starts_with('0') || words[i].starts_with('+')) {
            let mut j = i;
            let mut digits = 0;
            while j < words.len() && is_group(words[j]) && digits < 15 {
                digits += words[j].chars().filter(char::is_ascii_digit).count();
                j += 1;
                if core(words[j - 1]) != words[j - 1] {
                    break;
                }
            }
            if j - i >= 2 && (9..=15).contains(&digits) {
                let last = words[j - 1];
                out.push(format!("[nomor disamarkan]{}", &last[core(last).len()..]));
                i = j;
                continue;
            }
        }
        out.push(words[i].to_owned());
        i += 1;
    }
    out.join(" ")
}

/// The resident's messages as officials may read them: answers to the identity request
/// (a later message that gives a name or an address) are left out, and a confidential
/// reporter's name is masked wherever it still appears.
pub fn complaint_texts(
    texts: &[String],
    reporter_name: Option<&str>,
    confidential: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        if i > 0 && {
            let r = aduan_core::parse_identity_reply(t);
            r.name.is_some() || r.address.is_some()
        } {
            continue;
        }
        let mut t = t.clone();
        if confidential && let Some(name) = reporter_name.filter(|n| n.chars().count() >= 3) {
            t = replace_ignore_case(&t, name, "[nama disamarkan]");
        }
        out.push(t);
    }
    out
}

fn replace_ignore_case(text: &str, needle: &str, with: &str) -> String {
    let lower = text.to_lowercase();
    let n = needle.to_lowercase();
    if lower.len() != text.len() || n.is_empty() {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut i = 0;
    while let Some(pos) = lower[i..].find(&n) {
        out.push_str(&text[i..i + pos]);
        out.push_str(with);
        i += pos + n.len();
    }
    out.push_str(&text[i..]);
    out
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
    line(out, "Diterima", &format_id(n.created_at));
    if let Some(d) = n.first_response_due {
        line(out, "Batas tanggapan", &format_id(d));
    }
    if let Some(d) = n.resolution_due {
        line(out, "Batas penyelesaian", &format_id(d));
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

/// The reminder before a deadline.
pub fn warning_text(n: &Notice<'_>, clock: ClockKind, due: DateTime<Utc>) -> String {
    let mut s = format!(
        "[{}] Pengingat: batas waktu {} aduan segera berakhir\n\nBatas waktu {} aduan ini \
         berakhir {}. Mohon segera ditanggapi; balas email ini untuk menjawab pelapor.\n\n",
        n.code,
        clock.label_id(),
        clock.label_id(),
        format_id(due)
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
        format_id(due),
        match clock {
            ClockKind::FirstResponse => "tanggapan",
            ClockKind::Resolution => "penyelesaian",
        }
    );
    body(n, &mut s);
    s
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
            Diterima              : Senin, 30 November 2026 pukul 08.00 WIB
            Batas tanggapan       : Selasa, 1 Desember 2026 pukul 08.00 WIB
            Batas penyelesaian    : Senin, 14 Desember 2026 pukul 08.00 WIB
            Pelapor               : dirahasiakan atas permintaan pelapor

            Isi aduan:
            > Jalan berlubang di Desa Kedungwringin, hubungi [nomor disamarkan]

            Lihat dan tindak lanjuti: https://aduan.example.go.id/tickets/ADU-04106105
        "#]]
        .assert_eq(&disposition_text(&n));
    }
}
