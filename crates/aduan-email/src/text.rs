//! Turning a mail body into what a ticket thread should show: line endings normalised, the
//! quoted history of a reply and the signature cut off, blank runs squeezed.

/// The longest text kept of one mail, in characters (as for the intake API).
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Lines that introduce the quoted message in a reply, in the languages residents and their
/// mail programs use. Matched case-insensitively at the start of a (trimmed) line.
const QUOTE_HEADERS: &[&str] = &[
    "-----original message-----",
    "----- original message -----",
    "-----pesan asli-----",
    "----- pesan asli -----",
    "-----pesan awal-----",
    "----- pesan awal -----",
    "________________________________",
];

/// Attribution lines ("On <date>, <someone> wrote:") begin with one of these and end with
/// one of `ATTRIBUTION_ENDS`, possibly wrapped over two lines.
const ATTRIBUTION_STARTS: &[&str] = &["on ", "pada ", "am ", "le ", "el ", "op ", "il "];
const ATTRIBUTION_ENDS: &[&str] = &[
    "wrote:",
    "menulis:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "schreef:",
    "ha scritto:",
];

/// Outlook puts the quoted message under a header block: `From:` then `Sent:`/`Date:`.
const OUTLOOK_FROM: &[&str] = &["from:", "dari:", "von:", "de:"];
const OUTLOOK_SENT: &[&str] = &["sent:", "date:", "dikirim:", "tanggal:", "gesendet:", "envoyé :"];

/// Mobile signatures that end a message on their own line.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my",
    "dikirim dari",
    "kirim dari",
    "get outlook for",
    "sent from yahoo mail",
    "sent from mail for windows",
];

fn starts_with_any(line: &str, prefixes: &[&str]) -> bool {
    let lower = line.to_lowercase();
    prefixes.iter().any(|p| lower.starts_with(p))
}

fn ends_with_any(line: &str, suffixes: &[&str]) -> bool {
    let lower = line.to_lowercase();
    suffixes.iter().any(|s| lower.ends_with(s))
}

/// Where the quoted history starts, as a line index.
fn quote_start(lines: &[&str]) -> Option<usize> {
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if QUOTE_HEADERS.iter().any(|h| line.to_lowercase().starts_with(h)) {
            return Some(i);
        }
        if starts_with_any(line, ATTRIBUTION_STARTS) {
            if ends_with_any(line, ATTRIBUTION_ENDS) {
                return Some(i);
            }
            // Wrapped: "On Tue, 20 Apr 2020 at 10:00, Siti <siti@…>\nwrote:".
            if let Some(next) = lines.get(i + 1)
                && ends_with_any(next.trim(), ATTRIBUTION_ENDS)
                && line.len() < 200
            {
                return Some(i);
            }
        }
        if starts_with_any(line, OUTLOOK_FROM)
            && lines[i + 1..].iter().take(3).any(|l| starts_with_any(l.trim(), OUTLOOK_SENT))
        {
            return Some(i);
        }
        // A trailing block of `>` lines is the quoted message even without an attribution.
        if line.starts_with('>')
            && lines[i..].iter().all(|l| l.trim().is_empty() || l.trim_start().starts_with('>'))
        {
            return Some(i);
        }
    }
    None
}

/// Where the signature starts: the `-- ` delimiter, or a mobile signature line near the end.
fn signature_start(lines: &[&str]) -> Option<usize> {
    if let Some(i) = lines.iter().rposition(|l| *l == "-- " || *l == "--") {
        return Some(i);
    }
    let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
    starts_with_any(lines[last].trim(), MOBILE_SIGNATURES).then_some(last)
}

/// Normalises line endings and whitespace: LF only, no trailing spaces, at most one blank
/// line in a row, no blank lines at either end.
pub fn normalize(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    // Control characters (NUL above all: PostgreSQL text can't hold it) are dropped.
    let text: String =
        text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end().trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

/// What is new in a mail body: the quoted history of a reply and the signature are cut
/// off. When cutting would leave nothing (a mail that only quotes), the whole text stays.
pub fn new_content(body: &str) -> String {
    let text = normalize(body);
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    if let Some(q) = quote_start(&lines) {
        end = q;
    }
    if let Some(s) = signature_start(&lines[..end]) {
        end = s;
    }
    // Inline quotes (`> …` between answers) are history too.
    let kept: Vec<&str> =
        lines[..end].iter().copied().filter(|l| !l.trim_start().starts_with('>')).collect();
    let cut = normalize(&kept.join("\n"));
    if cut.is_empty() { text } else { cut }
}

/// Cuts `text` to [`MAX_TEXT_CHARS`] characters, saying so at the end.
pub fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => format!("{}\n[…dipotong]", &text[..at]),
        None => text,
    }
}

const REPLY_PREFIXES: &[&str] = &["re:", "aw:", "sv:", "balas:", "bls:"];
const FORWARD_PREFIXES: &[&str] = &["fwd:", "fw:", "wg:", "tr:", "tl:", "ttg:"];

/// A subject without its reply and forward prefixes (`Re:`, `AW:`, `Fwd:`, `Balas:`, …),
/// and whether one of them marked a reply.
fn strip_prefixes(subject: &str) -> (&str, bool) {
    let mut s = subject.trim();
    let mut reply = false;
    'strip: loop {
        for (prefixes, is_reply) in [(REPLY_PREFIXES, true), (FORWARD_PREFIXES, false)] {
            if let Some(rest) = prefixes.iter().find_map(|p| strip_ascii_ci(s, p)) {
                reply |= is_reply;
                s = rest.trim_start();
                continue 'strip;
            }
        }
        return (s, reply);
    }
}

/// `s` without the ASCII `prefix`, compared without regard to case.
fn strip_ascii_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // Equal to ASCII bytes, so `prefix.len()` is a character boundary of `s`.
    head.eq_ignore_ascii_case(prefix.as_bytes()).then(|| &s[prefix.len()..])
}

/// A subject without its reply and forward prefixes.
pub fn bare_subject(subject: &str) -> &str {
    strip_prefixes(subject).0
}

/// Whether a subject marks a reply (`Re:`, `AW:`, `Balas:`, …; a forward is not one).
pub fn is_reply_subject(subject: &str) -> bool {
    strip_prefixes(subject).1
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn check(input: &str, expect: expect_test::Expect) {
        expect.assert_eq(&new_content(input));
    }

    #[test]
    fn gmail_replies_lose_the_quoted_message() {
        check(
            "Sudah saya cek, lubangnya makin besar.\r\n\r\nOn Tue, 20 Apr 2026 at 10:00, Lapak Aduan <intake@aduan.test> wrote:\r\n> Terima kasih, aduan Anda sudah kami terima\r\n> dengan kode ADU-7K3M9QXP.\r\n",
            expect![[r#"Sudah saya cek, lubangnya makin besar."#]],
        );
    }

    #[test]
    fn indonesian_attributions_wrapped_over_two_lines_count() {
        check(
            "Mohon segera ditindaklanjuti.\n\nPada tanggal Sel, 20 Apr 2026 10.00, Lapak Aduan <intake@aduan.test>\nmenulis:\n\n> Terima kasih",
            expect![[r#"Mohon segera ditindaklanjuti."#]],
        );
    }

    #[test]
    fn outlook_header_blocks_and_signatures_are_cut() {
        check(
            "Tim sudah ke lokasi.\n\nSalam,\nBudi\n\n-- \nDinas Pekerjaan Umum\nTelp 0281-123\n\n________________________________\nFrom: Lapak Aduan\nSent: Monday\n",
            expect![[r#"
                Tim sudah ke lokasi.

                Salam,
                Budi"#]],
        );
        check(
            "Jalan di depan SD rusak.\n\nDikirim dari iPhone saya",
            expect![[r#"Jalan di depan SD rusak."#]],
        );
        check(
            "Balasan saya di bawah.\n\nDari: Lapak Aduan <intake@aduan.test>\nDikirim: Senin\nKepada: Siti\n\nIsi lama",
            expect![[r#"Balasan saya di bawah."#]],
        );
    }

    #[test]
    fn inline_quotes_are_dropped_and_answers_kept() {
        check(
            "> Di mana lokasinya?\nDi depan pasar Ajibarang.\n> Sejak kapan?\nSejak dua minggu.",
            expect![[r#"
                Di depan pasar Ajibarang.
                Sejak dua minggu."#]],
        );
    }

    #[test]
    fn a_mail_that_only_quotes_is_kept_whole() {
        check(
            "> Terima kasih\n> ADU-7K3M9QXP",
            expect![[r#"
                > Terima kasih
                > ADU-7K3M9QXP"#]],
        );
    }

    #[test]
    fn forwarded_complaints_are_not_cut() {
        check(
            "Tolong ditindaklanjuti.\n\n---------- Forwarded message ---------\nFrom: Warga <warga@example.id>\nSubject: Sampah\n\nSampah menumpuk di pasar.",
            expect![[r#"
                Tolong ditindaklanjuti.

                ---------- Forwarded message ---------
                From: Warga <warga@example.id>
                Subject: Sampah

                Sampah menumpuk di pasar."#]],
        );
    }

    #[test]
    fn whitespace_is_normalised() {
        assert_eq!(normalize("\r\n\r\n a  \r\n\r\n\r\n\r\nb\t\r\n\r\n"), " a\n\nb");
        assert_eq!(normalize("\u{feff}x"), "x");
        assert_eq!(normalize("a\0b\x07c\td"), "abc\td");
    }

    #[test]
    fn long_texts_are_cut_with_a_note() {
        let t = truncate("é".repeat(MAX_TEXT_CHARS + 5));
        assert!(t.ends_with("[…dipotong]"));
        assert_eq!(t.chars().filter(|c| *c == 'é').count(), MAX_TEXT_CHARS);
        assert_eq!(truncate("pendek".into()), "pendek");
    }

    #[test]
    fn subjects_lose_reply_prefixes() {
        assert_eq!(bare_subject("Re: AW: Fwd:  [ADU-7K3M9QXP] Jalan"), "[ADU-7K3M9QXP] Jalan");
        assert_eq!(bare_subject("Balas: Jalan rusak"), "Jalan rusak");
        assert_eq!(bare_subject("Reklame liar"), "Reklame liar");
        assert!(is_reply_subject("RE: Jalan"));
        assert!(!is_reply_subject("Fwd: Jalan"));
        assert!(!is_reply_subject("Reklame liar"));
    }
}
