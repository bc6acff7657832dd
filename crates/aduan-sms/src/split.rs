//! How a text travels as SMS: GSM 03.38 7-bit when every character is in the GSM alphabet
//! (160 septets in one part, 153 per part of a concatenated message; characters of the
//! extension table take two), UCS-2 otherwise (70 UTF-16 units, 67 per part). Parts never
//! cut an escape pair or a surrogate pair, as phones and gateways split them.

/// The coding a text is sent in. `kannel_coding` is Kannel's `coding` CGI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gsm7,
    Ucs2,
}

impl Coding {
    /// Kannel's `coding`: 0 = 7 bit, 2 = UCS-2.
    pub fn kannel_coding(self) -> u8 {
        match self {
            Coding::Gsm7 => 0,
            Coding::Ucs2 => 2,
        }
    }

    /// Units in a message of one part.
    pub fn single(self) -> usize {
        match self {
            Coding::Gsm7 => 160,
            Coding::Ucs2 => 70,
        }
    }

    /// Units per part of a concatenated message (the rest holds the 6-byte UDH).
    pub fn per_part(self) -> usize {
        match self {
            Coding::Gsm7 => 153,
            Coding::Ucs2 => 67,
        }
    }
}

/// The GSM 03.38 default alphabet (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (escape + one septet each).
const GSM_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets of `c` in GSM-7, or `None` when it has no GSM-7 form.
fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// GSM-7 when every character has a GSM-7 form, else UCS-2.
pub fn coding_of(text: &str) -> Coding {
    if text.chars().all(|c| gsm_septets(c).is_some()) { Coding::Gsm7 } else { Coding::Ucs2 }
}

fn units(c: char, coding: Coding) -> usize {
    match coding {
        Coding::Gsm7 => gsm_septets(c).unwrap_or(1),
        Coding::Ucs2 => c.len_utf16(),
    }
}

/// The length of `text` in units of `coding` (septets or UTF-16 units).
pub fn length(text: &str, coding: Coding) -> usize {
    text.chars().map(|c| units(c, coding)).sum()
}

/// The parts `text` travels in: one when it fits, else pieces of at most `per_part`
/// units, in order.
pub fn split(text: &str) -> Vec<String> {
    let coding = coding_of(text);
    if length(text, coding) <= coding.single() {
        return vec![text.to_owned()];
    }
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut used = 0;
    for c in text.chars() {
        let n = units(c, coding);
        if used + n > coding.per_part() {
            parts.push(std::mem::take(&mut part));
            used = 0;
        }
        part.push(c);
        used += n;
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// How many parts `text` takes.
pub fn parts(text: &str) -> usize {
    split(text).len()
}

/// `text` shortened so it takes at most `max_parts` parts, ending in `...` when cut.
pub fn cap(text: &str, max_parts: usize) -> String {
    let max_parts = max_parts.max(1);
    if parts(text) <= max_parts {
        return text.to_owned();
    }
    let coding = coding_of(text);
    let room =
        if max_parts == 1 { coding.single() } else { coding.per_part() * max_parts } - "...".len();
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let n = units(c, coding);
        if used + n > room {
            break;
        }
        out.push(c);
        used += n;
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_texts_take_160_then_153_per_part() {
        let one = "a".repeat(160);
        assert_eq!(coding_of(&one), Coding::Gsm7);
        assert_eq!(split(&one), vec![one.clone()]);
        let two = "a".repeat(161);
        let p = split(&two);
        assert_eq!(p.iter().map(|s| s.len()).collect::<Vec<_>>(), vec![153, 8]);
        assert_eq!(p.concat(), two);
        assert_eq!(parts(&"b".repeat(306)), 2);
        assert_eq!(parts(&"b".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_count_twice_and_are_never_cut() {
        // 80 euro signs = 160 septets: one part.
        assert_eq!(length(&"€".repeat(80), Coding::Gsm7), 160);
        assert_eq!(parts(&"€".repeat(80)), 1);
        // 152 letters then a brace: the brace (2 septets) does not fit in 153, so it moves.
        let text = format!("{}{{ rest of the text", "x".repeat(152));
        let p = split(&text);
        assert_eq!(p[0], "x".repeat(152));
        assert!(p[1].starts_with('{'));
        assert_eq!(p.concat(), text);
    }

    #[test]
    fn indonesian_and_accents_stay_gsm_but_other_scripts_need_ucs2() {
        assert_eq!(coding_of("Jalan rusak di Desa Karangklesem, café [RT 03]"), Coding::Gsm7);
        assert_eq!(coding_of("Lampu mati “tiga hari”"), Coding::Ucs2);
        assert_eq!(coding_of("Banjir 🌧"), Coding::Ucs2);
        let text = "ꦲꦗꦶ".repeat(30); // Javanese script, 90 UTF-16 units
        assert_eq!(coding_of(&text), Coding::Ucs2);
        let p = split(&text);
        assert_eq!(p.iter().map(|s| length(s, Coding::Ucs2)).collect::<Vec<_>>(), vec![67, 23]);
        // é is in the basic table (1 septet), € in the extension table (2).
        assert_eq!(length(&"é€".repeat(35), Coding::Gsm7), 105);
    }

    #[test]
    fn surrogate_pairs_are_never_cut() {
        // 66 UTF-16 units, then an emoji (a surrogate pair) that no longer fits in 67.
        let text = format!("{}🌧 and more text after the emoji", "ж".repeat(66));
        assert_eq!(coding_of(&text), Coding::Ucs2);
        let p = split(&text);
        assert_eq!(length(&p[0], Coding::Ucs2), 66);
        assert!(p[1].starts_with('🌧'));
        assert_eq!(p.concat(), text);
    }

    #[test]
    fn the_cap_cuts_and_marks() {
        let long = "kata ".repeat(200); // 1,000 septets: 7 parts
        assert_eq!(parts(&long), 7);
        let capped = cap(&long, 3);
        assert_eq!(parts(&capped), 3);
        assert!(capped.ends_with("..."));
        assert!(length(&capped, Coding::Gsm7) <= 3 * 153);
        assert_eq!(parts(&cap(&long, 1)), 1);
        assert_eq!(cap("pendek", 1), "pendek");
    }

    #[test]
    fn the_default_receipt_needs_a_short_form() {
        // The store's receipt template is longer than one SMS; see
        // `aduan_core::texts::receipt_on`.
        let code = aduan_core::TicketCode::from_entropy([1, 2, 3, 4, 5]);
        let ack = aduan_core::ack_text(aduan_core::DEFAULT_ACK_TEMPLATE, code, 24);
        assert!(parts(&ack) > 1);
    }

    #[test]
    fn what_texts_counts_as_one_part_is_one_part() {
        // `aduan_core::texts::fits_one_sms` decides, without this module, whether a receipt
        // goes as written: every character it accepts must be one GSM-7 septet.
        let accepted: String = (0u8..=127)
            .map(char::from)
            .filter(|c| aduan_core::texts::fits_one_sms(&c.to_string()))
            .collect();
        assert!(accepted.len() > 70, "{accepted:?}");
        assert_eq!(coding_of(&accepted), Coding::Gsm7, "{accepted:?}");
        assert_eq!(length(&accepted, Coding::Gsm7), accepted.chars().count());
        let longest: String = accepted.chars().cycle().take(160).collect();
        assert!(aduan_core::texts::fits_one_sms(&longest));
        assert_eq!(parts(&longest), 1);
    }
}
