//! Indonesian words as complaints use them, shared by the incident matcher
//! ([`crate::incident`]) and the learned router (`aduan_routing::text`).
//!
//! Pure functions over lower-case words. The light stemmer here strips affixes without
//! a list of roots; the keyword stemmer of `aduan_routing::stemmer` checks each step
//! against one.

/// Function words and courtesies that say nothing about which problem a complaint is.
/// Each user adds its own words to these.
pub const FUNCTION_WORDS: &[&str] = &[
    "yang", "dan", "di", "ke", "dari", "untuk", "dengan", "ini", "itu", "pak", "bapak", "ibu",
    "bu", "mohon", "tolong", "saya", "kami", "kita", "ada", "tidak", "sudah", "juga", "karena",
    "atau", "pada", "dalam", "akan", "bisa", "agar", "sangat", "admin", "terima", "kasih", "ya",
];

/// Whether `word` is one of the [`FUNCTION_WORDS`].
pub fn is_function_word(word: &str) -> bool {
    FUNCTION_WORDS.contains(&word)
}

/// The prefixes the light stemmer may strip, with the nasal forms of `me-` and `pe-`,
/// longest first where one starts another.
pub const PREFIXES: &[&str] = &[
    "meng", "meny", "mem", "men", "me", "peng", "peny", "pem", "pen", "per", "pe", "ber", "di",
    "ter", "ke", "se",
];

/// The plain prefixes: [`PREFIXES`] without `meny-` and the nasal and `per-` forms of `pe-`.
pub const PLAIN_PREFIXES: &[&str] =
    &["meng", "mem", "men", "me", "di", "ter", "ber", "pe", "ke", "se"];

/// Particles, stripped one after the other.
const PARTICLES: [&str; 3] = ["nya", "lah", "kah"];

/// Derivational suffixes; at most one is stripped.
const SUFFIXES: [&str; 3] = ["kan", "an", "i"];

/// Letters a prefix must leave.
const PREFIX_KEEP: usize = 4;

/// How much of a word [`light_stem`] leaves, and which prefixes it strips.
#[derive(Clone, Copy, Debug)]
pub struct LightStem {
    /// Letters a particle (`-nya`, `-lah`, `-kah`) must leave.
    pub particle_keep: usize,
    /// Letters a suffix (`-kan`, `-an`, `-i`) must leave.
    pub suffix_keep: usize,
    /// The prefixes tried in order; the first that leaves four letters is stripped.
    pub prefixes: &'static [&'static str],
}

/// Strips common Indonesian affixes from a lower-case word: the particles (`-nya`, `-lah`,
/// `-kah`), then one suffix (`-kan`, `-an`, `-i`), then one prefix of `how.prefixes`, each
/// only when enough of the word is left.
pub fn light_stem<'a>(word: &'a str, how: &LightStem) -> &'a str {
    let mut w = word;
    for suf in PARTICLES {
        if let Some(s) = w.strip_suffix(suf).filter(|s| s.len() >= how.particle_keep) {
            w = s;
        }
    }
    if let Some(s) =
        SUFFIXES.iter().find_map(|suf| w.strip_suffix(suf).filter(|s| s.len() >= how.suffix_keep))
    {
        w = s;
    }
    if let Some(s) =
        how.prefixes.iter().find_map(|pre| w.strip_prefix(pre).filter(|s| s.len() >= PREFIX_KEEP))
    {
        w = s;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The incident matcher's setting and the learned router's.
    const SHORT: LightStem =
        LightStem { particle_keep: 3, suffix_keep: 4, prefixes: PLAIN_PREFIXES };
    const LONG: LightStem = LightStem { particle_keep: 4, suffix_keep: 5, prefixes: PREFIXES };

    /// (word, stem with [`SHORT`], stem with [`LONG`]).
    fn check(cases: &[(&str, &str, &str)]) {
        for &(word, short, long) in cases {
            assert_eq!(light_stem(word, &SHORT), short, "{word}");
            assert_eq!(light_stem(word, &LONG), long, "{word}");
        }
    }

    #[test]
    fn affixes_are_stripped_while_enough_is_left() {
        check(&[
            // Stripped: particles, then one suffix, then one prefix.
            ("rumahnya", "rumah", "rumah"),
            ("sampahnya", "sampah", "sampah"),
            ("jalannya", "jalan", "jalan"),
            ("bocornyalah", "bocornya", "bocornya"),
            ("dimatikan", "mati", "mati"),
            ("mematikan", "mati", "mati"),
            ("perbaikan", "rbai", "rbai"),
            ("diperbaiki", "perbaik", "perbaik"),
            ("terendam", "endam", "endam"),
            ("tergenang", "genang", "genang"),
            ("berserakan", "sera", "sera"),
            ("jalanan", "jalan", "jalan"),
            ("kerusakan", "rusa", "rusa"),
            ("menyumbat", "yumbat", "umbat"),
            ("pengaduan", "ngadu", "gadu"),
            ("sekolah", "seko", "seko"),
            ("dimana", "mana", "mana"),
            ("terbang", "bang", "bang"),
            // Kept: a particle must leave three letters or four, a suffix four or five, a
            // prefix four.
            ("apanya", "apa", "apanya"),
            ("airnya", "air", "airnya"),
            ("makan", "makan", "makan"),
            ("jalan", "jalan", "jalan"),
            ("lampu", "lampu", "lampu"),
            ("kunci", "kunc", "kunci"),
            ("mati", "mati", "mati"),
            ("pasang", "pasang", "pasang"),
            ("debu", "debu", "debu"),
            ("diam", "diam", "diam"),
            ("kebun", "kebun", "kebun"),
            ("sebab", "sebab", "sebab"),
            ("", "", ""),
        ]);
    }

    #[test]
    fn function_words_are_only_function_words() {
        assert!(is_function_word("yang") && is_function_word("tolong"));
        assert!(!is_function_word("jalan") && !is_function_word("lampu"));
    }

    #[test]
    fn plain_prefixes_are_prefixes() {
        assert!(PLAIN_PREFIXES.iter().all(|p| PREFIXES.contains(p)));
    }
}
