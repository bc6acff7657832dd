//! Reading a resident's answer to "is it fixed?" (issue 17 item 4).
//!
//! When a ticket becomes `resolved` the resident is asked to answer 1 (fixed) or 2 (not
//! fixed), optionally with a rating 1–5. They answer as people write in chats and SMS:
//! "1", "1 5", "udah", "sdh selesai", "blm", "belum beres", "belum pak, lampunya masih
//! mati", "sudah, nilai 4", "2 jalan masih rusak". [`read_confirmation`] turns such a text
//! into a [`Verdict`] and an optional rating. It is pure and table-tested.
//!
//! The rules, in order:
//! 1. A leading `1` or `2` (alone as the first word) decides: 1 is fixed, 2 is not fixed. A
//!    number 1–5 right after it is the rating ("1 5", "1, 4").
//! 2. Otherwise the words count: "not yet" and "still" words (`belum`, `blm`, `masih`,
//!    `tidak`/`gak` not followed by "ada masalah") for *not fixed*; "done" words (`sudah`,
//!    `udah`, `sdh`, `beres`, `selesai`, `mantap`, `terima kasih`, …) for *fixed*. A done
//!    word right after a not-yet word ("belum beres") counts for the not-yet word only;
//!    `sudah`+`tidak` ("udah gak mati lagi") means "no longer broken", i.e. fixed.
//! 3. Only one side present gives that verdict. Both sides, neither, or a hedge
//!    (`kayaknya`, `sepertinya`, `mungkin`) give [`Verdict::Unclear`]: the message stays on
//!    the ticket for a person to read and the confirmation stays pending. So "belum sempat
//!    cek tapi sudah beres kayaknya" is unclear — we never close or reopen a ticket on a
//!    guess; if nothing clearer comes, the deadline closes it as for silence.
//! 4. The rating, without a leading 1/2, is a number 1–5 after `nilai`, `rating`, `skor`
//!    or `bintang`, or before `bintang` ("sudah, nilai 4", "mantap 5 bintang").

/// What the resident said about the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Fixed,
    NotFixed,
    /// Neither clearly; the confirmation stays pending.
    Unclear,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fixed => "fixed",
            Verdict::NotFixed => "not_fixed",
            Verdict::Unclear => "unclear",
        }
    }
}

/// A resident's answer as read by [`read_confirmation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Confirmation {
    pub verdict: Verdict,
    /// 1–5 when the resident gave one.
    pub rating: Option<u8>,
}

const NOT_YET: &[&str] = &["belum", "blm", "blom", "belom", "blum", "bllm", "masih", "msh", "msih"];
const NOT: &[&str] =
    &["tidak", "tdk", "gak", "ga", "gk", "nggak", "ngga", "enggak", "engga", "ndak", "nda"];
const DONE: &[&str] = &[
    "sudah",
    "sdh",
    "udah",
    "udh",
    "dah",
    "sudh",
    "sdah",
    "uda",
    "beres",
    "selesai",
    "tuntas",
    "mantap",
    "mantab",
    "bagus",
    "oke",
    "ok",
    "okay",
    "sip",
    "makasih",
    "makasi",
    "trims",
    "thanks",
    "diperbaiki",
    "diperbaikin",
    "normal",
    "lancar",
];
/// Words that agree but say little alone ("ya", "iya"): they count only without any
/// not-yet word.
const WEAK_YES: &[&str] = &["ya", "iya", "yes", "betul", "benar", "bener", "y"];
const HEDGE: &[&str] = &["kayaknya", "kyknya", "sepertinya", "mungkin", "tampaknya", "kira"];
const RATING_WORDS: &[&str] = &["nilai", "rating", "skor", "bintang", "nilainya"];

fn rating_of(word: &str) -> Option<u8> {
    match word {
        "1" | "2" | "3" | "4" | "5" => word.parse().ok(),
        _ => None,
    }
}

/// Reads a resident's answer to the confirmation question. See the module doc for the
/// rules.
pub fn read_confirmation(text: &str) -> Confirmation {
    let lower = text.to_lowercase();
    let words: Vec<&str> =
        lower.split(|ch: char| !ch.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    // Rule 1: a leading 1 or 2.
    if let Some(first) = words.first() {
        let verdict = match *first {
            "1" => Some(Verdict::Fixed),
            "2" => Some(Verdict::NotFixed),
            _ => None,
        };
        if let Some(verdict) = verdict {
            let rating = words.get(1).and_then(|w| rating_of(w)).or_else(|| keyword_rating(&words));
            return Confirmation { verdict, rating };
        }
    }
    // Rule 2: the words.
    let (mut done, mut not_yet, mut weak, mut hedge) = (0, 0, 0, false);
    for (i, w) in words.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| words[p]);
        let next = words.get(i + 1).copied();
        let after_negation = prev.is_some_and(|p| NOT_YET.contains(&p) || NOT.contains(&p));
        if NOT_YET.contains(w) {
            not_yet += 1;
        } else if NOT.contains(w) {
            let after_done = prev.is_some_and(|p| DONE.contains(&p));
            let no_problem = matches!(next, Some("ada" | "masalah" | "kendala" | "apa"))
                && words[i + 1..].iter().take(3).any(|n| matches!(*n, "masalah" | "kendala"));
            if no_problem {
                done += 1;
            } else if !after_done {
                not_yet += 1;
            }
        } else if *w == "kasih" && prev == Some("terima") {
            done += 1;
        } else if DONE.contains(w) {
            if !after_negation {
                done += 1;
            }
        } else if WEAK_YES.contains(w) {
            weak += 1;
        } else if HEDGE.contains(w) {
            hedge = true;
        }
    }
    let verdict = if hedge || (done > 0 && not_yet > 0) {
        Verdict::Unclear
    } else if not_yet > 0 {
        Verdict::NotFixed
    } else if done > 0 || weak > 0 {
        Verdict::Fixed
    } else {
        Verdict::Unclear
    };
    Confirmation { verdict, rating: keyword_rating(&words) }
}

/// Rule 4: a rating named by a word ("nilai 4", "5 bintang").
fn keyword_rating(words: &[&str]) -> Option<u8> {
    words.iter().enumerate().find_map(|(i, w)| {
        if RATING_WORDS.contains(w) {
            words.get(i + 1).and_then(|n| rating_of(n))
        } else {
            rating_of(w).filter(|_| words.get(i + 1) == Some(&"bintang"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_residents_write_them() {
        use Verdict::*;
        let table: &[(&str, Verdict, Option<u8>)] = &[
            ("1", Fixed, None),
            ("2", NotFixed, None),
            ("1 5", Fixed, Some(5)),
            ("1, 4", Fixed, Some(4)),
            ("2 1", NotFixed, Some(1)),
            ("2 jalan masih rusak", NotFixed, None),
            ("1 terima kasih, nilai 5", Fixed, Some(5)),
            ("udah", Fixed, None),
            ("Sudah.", Fixed, None),
            ("sdh selesai", Fixed, None),
            ("sudah, nilai 4", Fixed, Some(4)),
            ("Sudah beres pak, terima kasih", Fixed, None),
            ("terima kasih", Fixed, None),
            ("mantap 5 bintang", Fixed, Some(5)),
            ("iya", Fixed, None),
            ("ok", Fixed, None),
            ("udah gak mati lagi lampunya", Fixed, None),
            ("sudah tidak ada masalah", Fixed, None),
            ("blm", NotFixed, None),
            ("belum", NotFixed, None),
            ("Belum beres", NotFixed, None),
            ("belum pak, lampunya masih mati", NotFixed, None),
            ("belum selesai, nilai 1", NotFixed, Some(1)),
            ("masih rusak", NotFixed, None),
            ("tidak", NotFixed, None),
            ("gak beres sama sekali", NotFixed, None),
            ("iya belum", NotFixed, None),
            // Both sides, or a guess: a person reads it; the confirmation stays pending.
            ("belum sempat cek tapi sudah beres kayaknya", Unclear, None),
            ("sudah sebagian, tapi masih ada lubang", Unclear, None),
            ("sepertinya sudah", Unclear, None),
            ("", Unclear, None),
            ("5", Unclear, None),
            ("ada pohon tumbang di jalan 12", Unclear, None),
            ("12", Unclear, None),
            ("jalan 1 rusak", Unclear, None),
        ];
        for (text, verdict, rating) in table {
            let got = read_confirmation(text);
            assert_eq!((got.verdict, got.rating), (*verdict, *rating), "{text:?}");
        }
    }

    #[test]
    fn a_rating_out_of_range_is_no_rating() {
        assert_eq!(read_confirmation("1 9").rating, None);
        assert_eq!(read_confirmation("1 0").rating, None);
        assert_eq!(read_confirmation("sudah, nilai 10").rating, None);
    }
}
