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

/// Where the quoted history starts, as a line index. Linear in the number of lines: whether
/// everything from a line on is quoted is computed once, from the end.
fn quote_start(lines: &[&str]) -> Option<usize> {
    // `quoted_tail[i]`: every line from `i` on is blank or starts with `>`.
    let mut quoted_tail = vec![true; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        let l = lines[i].trim_start();
        quoted_tail[i] = quoted_tail[i + 1] && (l.trim_end().is_empty() || l.starts_with('>'));
    }
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        // A trailing block of `>` lines is the quoted message even without an attribution.
        // (No other marker starts with `>`.)
        if line.starts_with('>') {
            if quoted_tail[i] {
                return Some(i);
            }
            continue;
        }
        if starts_with_any(line, QUOTE_HEADERS) {
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
    use std::borrow::Cow;
    let text: Cow<'_, str> = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    };
    // Control characters (NUL above all: PostgreSQL text can't hold it) are dropped. A byte
    // scan first: most texts have none (0xC2 starts the C1 controls, and a few others).
    let suspect = |b: u8| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b == 0xc2;
    let text: Cow<'_, str> = if text.bytes().any(suspect) {
        text.chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
            .collect::<String>()
            .into()
    } else {
        text
    };
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

    fn quoted(n: usize) -> String {
        let mut body = String::from("Jawaban saya.\n");
        for i in 0..n {
            body.push_str(&format!("> baris {i}\n"));
        }
        body.push_str("akhir\n");
        body
    }

    fn timed(body: &str) -> std::time::Duration {
        let started = std::time::Instant::now();
        let cut = new_content(body);
        let elapsed = started.elapsed();
        assert!(cut.starts_with("Jawaban saya."));
        elapsed
    }

    #[test]
    fn a_long_quoted_history_is_cut_in_linear_time() {
        // 50,000 quoted lines and one line: the old scan looked at every later line for each
        // quoted line (30 s of CPU for 80,000 lines). Timed against 10,000 lines, the best
        // of several interleaved runs, so a busy machine or a debug build does not decide:
        // linear is ~5x, quadratic ~25x.
        let (small_body, large_body) = (quoted(10_000), quoted(50_000));
        let (mut small, mut large) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..7 {
            small = small.min(timed(&small_body));
            large = large.min(timed(&large_body));
        }
        eprintln!("new_content: 10,000 quoted lines {small:?}, 50,000 {large:?}");
        assert!(large < small * 12 + std::time::Duration::from_millis(5), "{small:?} → {large:?}");
        // In absolute terms too, generously for a debug build on a shared machine (about
        // 55 ms here in debug, alone; the old code took seconds).
        assert!(large < std::time::Duration::from_secs(1), "{large:?}");
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
