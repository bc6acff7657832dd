//! What officials may read of a resident's words. Pure text functions, shared by every path
//! that shows a complaint to an official: the notification mails (`aduan-routing`'s
//! `notify`), the ticket API and the ticket page (`aduan-web`). Operators and admins read the
//! text as it came; officials read it through [`for_officials`].
//!
//! - [`mask_personal`]: phone numbers (`[nomor disamarkan]`), the 16-digit NIK
//!   (`[NIK disamarkan]`) and email addresses (`[email disamarkan]`), wherever they are in
//!   the text. Ordinary numbers stay: `RT 03`, dates, times, `Rp 1.500.000`, coordinates.
//! - a reporter who asked for *rahasia*: their name's words (`[nama disamarkan]`) and their
//!   address (`[alamat disamarkan]`) are masked too, and a later message that answers the
//!   identity request (`Nama: … Alamat: …`) is not shown at all ([`is_identity_answer`]).
//!
//! - [`hide_keys`]: the key in a link that acts for someone (an official's action token, a
//!   resident's confirmation key) shows as `…` to everyone else.
//!
//! Every function is linear in the text (one pass over its characters, plus a short
//! needle per name word).

use std::borrow::Cow;

use crate::parse_identity_reply;

pub const PHONE_MASK: &str = "[nomor disamarkan]";
pub const NIK_MASK: &str = "[NIK disamarkan]";
pub const EMAIL_MASK: &str = "[email disamarkan]";
pub const NAME_MASK: &str = "[nama disamarkan]";
pub const ADDRESS_MASK: &str = "[alamat disamarkan]";
/// What officials read instead of a resident's answer to the identity request.
pub const IDENTITY_ANSWER_MASK: &str = "[jawaban identitas pelapor disamarkan]";

/// What is known of the reporter, to mask it in their words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reporter<'a> {
    pub name: Option<&'a str>,
    pub address: Option<&'a str>,
    /// They asked for *rahasia*.
    pub confidential: bool,
}

/// A text as an official may read it: contacts and NIK masked; for a confidential
/// reporter also their name and address. For any text an official sees (complaints,
/// answers, notes).
pub fn for_officials(text: &str, reporter: &Reporter<'_>) -> String {
    let mut out = mask_personal(text);
    if reporter.confidential {
        if let Some(a) = reporter.address.map(str::trim).filter(|a| a.chars().count() >= 5) {
            out = replace_ignore_case(&out, a, ADDRESS_MASK);
        }
        if let Some(name) = reporter.name {
            out = mask_name_words(&out, name);
        }
    }
    out
}

/// Whether a resident's message (not their first) answers the identity request: it gives
/// a name or an address. Officials never see these (the reporter's identity is shown masked
/// where it belongs, or not at all when they asked for *rahasia*).
pub fn is_identity_answer(text: &str) -> bool {
    let r = parse_identity_reply(text);
    r.name.is_some() || r.address.is_some()
}

/// A name shown without giving the person away: `Siti Aminah` → `S*** A***`.
pub fn mask_name(name: &str) -> String {
    let words: Vec<String> = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}***"))
        .collect();
    words.join(" ")
}

/// Masks phone numbers, NIK and email addresses in `text` (see the module docs).
pub fn mask_personal(text: &str) -> String {
    mask_numbers(&mask_emails(text))
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// `local@domain.tld` → [`EMAIL_MASK`].
fn mask_emails(text: &str) -> String {
    if !text.contains('@') {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    // Everything before `copied` is in `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > copied && is_local_char(chars[start - 1]) {
            start -= 1;
        }
        while start < i && chars[start] == '.' {
            start += 1;
        }
        let mut end = i + 1;
        while end < chars.len() && is_domain_char(chars[end]) {
            end += 1;
        }
        while end > i + 1 && matches!(chars[end - 1], '.' | '-') {
            end -= 1;
        }
        let domain: String = chars[i + 1..end].iter().collect();
        let tld_ok = domain
            .rsplit_once('.')
            .is_some_and(|(head, tld)| !head.is_empty() && tld.chars().count() >= 2);
        if start < i && tld_ok {
            out.extend(&chars[copied..start]);
            out.push_str(EMAIL_MASK);
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.extend(&chars[copied..]);
    out
}

fn digits_from(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Whether `Rp` (a money amount) comes right before position `i`.
fn after_rupiah(chars: &[char], i: usize) -> bool {
    let mut j = i;
    while j > 0 && matches!(chars[j - 1], ' ' | '.') {
        j -= 1;
    }
    j >= 2 && chars[j - 2].eq_ignore_ascii_case(&'r') && chars[j - 1].eq_ignore_ascii_case(&'p')
}

/// Phone numbers and NIK: a run of digit groups joined by single separators.
///
/// A run starts at a digit, `+` or `(` that does not follow a letter or digit. Groups after
/// the first join when they have at least three digits and look like parts of one number:
/// joined by a space or dash, groups of at most six digits (`0812 3456 7890`,
/// `330201 120390 0001`); joined by a dot, groups of three or four (`0812.3456.7890`); after
/// `+62` or `(0281)` any length. So a date (`04-12-2026`: `12` is too short), a time, a
/// coordinate (`109.239612`) or an amount after `Rp` never joins into a long number. A run
/// of 9 or more digits is masked: 16 digits not written as a phone number (no `+`, not
/// starting with 0) is a NIK, anything else a phone number; amounts with thousands dots
/// (`1.500.000.000`) are kept.
fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < n {
        let c = chars[i];
        let next_digit = i + 1 < n && chars[i + 1].is_ascii_digit();
        let starts = (c.is_ascii_digit() || (matches!(c, '+' | '(') && next_digit))
            && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !starts {
            out.push(c);
            i += 1;
            continue;
        }
        let plus = c == '+';
        let paren = c == '(';
        let first = if plus || paren { i + 1 } else { i };
        let mut end = digits_from(&chars, first);
        let mut groups = vec![end - first];
        let mut seps = Vec::new();
        if paren {
            // `(0281) 123456`: the area code in brackets, then the number.
            if end < n && chars[end] == ')' {
                let mut j = end + 1;
                if j < n && matches!(chars[j], ' ' | '-') {
                    j += 1;
                }
                let g = digits_from(&chars, j);
                if g - j >= 3 {
                    groups.push(g - j);
                    seps.push(' ');
                    end = g;
                }
            }
            if groups.len() == 1 {
                // Not a bracketed area code: the bracket is text, the digits start next.
                out.push(c);
                i += 1;
                continue;
            }
        }
        while end + 1 < n
            && matches!(chars[end], ' ' | '-' | '.')
            && chars[end + 1].is_ascii_digit()
        {
            let sep = chars[end];
            let g = digits_from(&chars, end + 1);
            let len = g - (end + 1);
            let prev = groups.last().copied().unwrap_or(0);
            let free = (plus || paren) && groups.len() == 1;
            let joins = len >= 3
                && (free
                    || match sep {
                        '.' => (3..=4).contains(&len) && prev <= 4,
                        _ => len <= 6 && prev <= 6,
                    });
            if !joins || (groups.len() == 1 && prev < 3 && !plus) {
                break;
            }
            groups.push(len);
            seps.push(sep);
            end = g;
        }
        let digits: usize = groups.iter().sum();
        let leading_zero = chars[first] == '0';
        let thousands = !plus
            && !leading_zero
            && seps.len() >= 2
            && seps.iter().all(|&s| s == '.')
            && groups[1..].iter().all(|&g| g == 3);
        if digits >= 9 && !thousands && !after_rupiah(&chars, i) {
            let nik = digits == 16 && !plus && !paren && !leading_zero;
            out.push_str(if nik { NIK_MASK } else { PHONE_MASK });
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

/// `needle` replaced wherever it occurs in `text`, ignoring case (per character, so the
/// positions stay those of the original text).
fn replace_ignore_case(text: &str, needle: &str, with: &str) -> String {
    let fold = |c: char| c.to_lowercase().next().unwrap_or(c);
    let hay: Vec<char> = text.chars().collect();
    let pat: Vec<char> = needle.chars().map(fold).collect();
    if pat.is_empty() || pat.len() > hay.len() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < hay.len() {
        if i + pat.len() <= hay.len()
            && hay[i..i + pat.len()].iter().map(|&c| fold(c)).eq(pat.iter().copied())
        {
            out.push_str(with);
            i += pat.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Every word of `name` (three letters or more) masked where it stands as a whole word.
fn mask_name_words(text: &str, name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if words.contains(&word.to_lowercase()) {
            out.push_str(NAME_MASK);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `text` with the key after every `marker` (the run of characters `key_char` accepts)
/// replaced by `…`: a link that acts for someone still shows where it was, not what opens
/// it. Borrowed when there was nothing to hide.
pub fn hide_keys<'a>(text: &'a str, marker: &str, key_char: impl Fn(char) -> bool) -> Cow<'a, str> {
    if !text.contains(marker) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let (head, after) = rest.split_at(i + marker.len());
        out.push_str(head);
        let tail = after.trim_start_matches(&key_char);
        if tail.len() < after.len() {
            out.push('…');
        }
        rest = tail;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(input: &str, expect: Expect) {
        expect.assert_eq(&mask_personal(input));
    }

    #[test]
    fn phones_in_every_form_are_masked() {
        check("hubungi 081234567890 ya", expect!["hubungi [nomor disamarkan] ya"]);
        check("WA: +6281234567890.", expect!["WA: [nomor disamarkan]."]);
        check("no hp 6281234567890", expect!["no hp [nomor disamarkan]"]);
        check("+62 812 3456 7890", expect!["[nomor disamarkan]"]);
        check("+62 81234567890", expect!["[nomor disamarkan]"]);
        check("0812 3456 7890, terima kasih", expect!["[nomor disamarkan], terima kasih"]);
        check("0812-3456-7890", expect!["[nomor disamarkan]"]);
        check("0812.3456.7890", expect!["[nomor disamarkan]"]);
        check("telp (0281) 635123", expect!["telp [nomor disamarkan]"]);
        check("telp 0281-635123", expect!["telp [nomor disamarkan]"]);
        check("(081234567890)", expect!["([nomor disamarkan])"]);
    }

    #[test]
    fn nik_and_emails_are_masked() {
        check("NIK 3302011234567890", expect!["NIK [NIK disamarkan]"]);
        check("NIK: 3302-0112-3456-7890.", expect!["NIK: [NIK disamarkan]."]);
        check("nik 330201 120390 0001", expect!["nik [NIK disamarkan]"]);
        check("email siti.aminah@example.co.id.", expect!["email [email disamarkan]."]);
        check("<budi+aduan@mail.example.id>", expect!["<[email disamarkan]>"]);
        check(
            "Siti@Example.ID dan budi@example.id",
            expect!["[email disamarkan] dan [email disamarkan]"],
        );
    }

    #[test]
    fn ordinary_numbers_stay() {
        check("RT 03 RW 05 Desa Pliken", expect!["RT 03 RW 05 Desa Pliken"]);
        check("tanggal 04-12-2026 jam 10.00", expect!["tanggal 04-12-2026 jam 10.00"]);
        check("sejak 2026-12-04 10.00 WIB", expect!["sejak 2026-12-04 10.00 WIB"]);
        check("Rp 1.500.000 dan 2.500.000.000", expect!["Rp 1.500.000 dan 2.500.000.000"]);
        check("Rp. 15000000000", expect!["Rp. 15000000000"]);
        check("lokasi -7.424612, 109.239612", expect!["lokasi -7.424612, 109.239612"]);
        check(
            "aduan ADU-04106105 dan ADU-7K3M9QXP",
            expect!["aduan ADU-04106105 dan ADU-7K3M9QXP"],
        );
        check("KM 12,5; 3 x 4 meter; no. 123", expect!["KM 12,5; 3 x 4 meter; no. 123"]);
        check("@polres lewat twitter", expect!["@polres lewat twitter"]);
        check("a@b", expect!["a@b"]);
    }

    #[test]
    fn a_number_next_to_a_small_one_is_masked_alone() {
        check("RT 03 081234567890", expect!["RT 03 [nomor disamarkan]"]);
        check("tahun 2026 081234567890", expect!["tahun 2026 [nomor disamarkan]"]);
    }

    #[test]
    fn confidential_reporters_are_masked_by_name_and_address() {
        let r = Reporter {
            name: Some("Siti Aminah"),
            address: Some("Desa Karangklesem"),
            confidential: true,
        };
        expect!["saya [nama disamarkan] dari [alamat disamarkan], hp [nomor disamarkan]. SITIMAH bukan saya"]
            .assert_eq(&for_officials(
                "saya siti dari desa karangklesem, hp 081234567890. SITIMAH bukan saya",
                &r,
            ));
        let open = Reporter { confidential: false, ..r };
        expect!["saya siti dari desa karangklesem, hp [nomor disamarkan]."]
            .assert_eq(&for_officials("saya siti dari desa karangklesem, hp 081234567890.", &open));
        assert!(is_identity_answer("Nama: Siti Aminah, Alamat: Desa Karangklesem. RAHASIA"));
        assert!(!is_identity_answer("jalannya masih rusak pak"));
        assert_eq!(mask_name("  Siti   Aminah "), "S*** A***");
    }

    #[test]
    fn long_texts_cost_linear_time() {
        let text = "0812 3456 a@b.id RT 03 ".repeat(20_000);
        let t = std::time::Instant::now();
        let out = mask_personal(&text);
        assert!(out.starts_with("0812 3456 [email disamarkan] RT 03 0812 3456"), "{}", &out[..60]);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
