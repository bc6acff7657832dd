//! Indonesian text as residents write it, normalised for matching and learning.
//!
//! `"Jln rusakkk bgt yg di ds. Karangklesem 😭 tolong cepat2!!"` becomes the words
//! `jalan rusak banget yang di desa karangklesem tolong cepat cepat`: lower case, URLs and
//! emoji dropped, letters repeated three times or more collapsed, punctuation removed,
//! reduplication with 2 spelled out, and slang and abbreviations expanded. For the learned
//! router, [`features_text`] further drops function words and strips common affixes
//! (light stemming: `dibersihkannya` → `bersih`).

use aduan_core::words::{LightStem, PREFIXES, is_function_word, light_stem};

/// Slang and abbreviations → their standard words.
const SLANG: &[(&str, &str)] = &[
    ("jln", "jalan"),
    ("jl", "jalan"),
    ("jalanan", "jalan"),
    ("gk", "tidak"),
    ("ga", "tidak"),
    ("gak", "tidak"),
    ("nggak", "tidak"),
    ("ngga", "tidak"),
    ("enggak", "tidak"),
    ("engga", "tidak"),
    ("tdk", "tidak"),
    ("tak", "tidak"),
    ("bgt", "banget"),
    ("yg", "yang"),
    ("dgn", "dengan"),
    ("dg", "dengan"),
    ("sdh", "sudah"),
    ("udh", "sudah"),
    ("udah", "sudah"),
    ("blm", "belum"),
    ("krn", "karena"),
    ("karna", "karena"),
    ("utk", "untuk"),
    ("tp", "tapi"),
    ("kl", "kalau"),
    ("klo", "kalau"),
    ("klw", "kalau"),
    ("kalo", "kalau"),
    ("dr", "dari"),
    ("sy", "saya"),
    ("aku", "saya"),
    ("mhn", "mohon"),
    ("trims", "terima kasih"),
    ("makasih", "terima kasih"),
    ("mksh", "terima kasih"),
    ("trimakasih", "terima kasih"),
    ("terimakasih", "terima kasih"),
    ("kec", "kecamatan"),
    ("kel", "kelurahan"),
    ("ds", "desa"),
    ("kab", "kabupaten"),
    ("rs", "rumah sakit"),
    ("pemkab", "pemerintah kabupaten"),
    ("pemdes", "pemerintah desa"),
    ("sklh", "sekolah"),
    ("jg", "juga"),
    ("msh", "masih"),
    ("lg", "lagi"),
    ("aja", "saja"),
    ("gmn", "bagaimana"),
    ("gimana", "bagaimana"),
    ("org", "orang"),
    ("byk", "banyak"),
    ("bnyk", "banyak"),
    ("skrg", "sekarang"),
    ("hrs", "harus"),
    ("pd", "pada"),
    ("sm", "sama"),
    ("dpt", "dapat"),
    ("lalin", "lalu lintas"),
    ("puskes", "puskesmas"),
    ("ortu", "orang tua"),
    ("bpk", "bapak"),
    ("perbaikin", "perbaiki"),
    ("benerin", "perbaiki"),
    ("rusakk", "rusak"),
    // Issue 18: more of what residents abbreviate.
    ("blom", "belum"),
    ("belom", "belum"),
    ("sdg", "sedang"),
    ("bs", "bisa"),
    ("tgl", "tanggal"),
    ("kmrn", "kemarin"),
    ("bln", "bulan"),
    ("thn", "tahun"),
    ("mgg", "minggu"),
    ("rmh", "rumah"),
    ("dpn", "depan"),
    ("blkg", "belakang"),
    ("dkt", "dekat"),
    ("tmpt", "tempat"),
    ("sblm", "sebelum"),
    ("stlh", "setelah"),
    ("trs", "terus"),
    ("bkn", "bukan"),
    ("lbh", "lebih"),
    ("pdhl", "padahal"),
    ("kpd", "kepada"),
    ("ttg", "tentang"),
    ("gg", "gang"),
    ("tlg", "tolong"),
    ("knp", "kenapa"),
    ("emg", "memang"),
    ("sdah", "sudah"),
    ("dah", "sudah"),
];

/// Greetings and names every complaint to the regent may carry, besides the
/// [`FUNCTION_WORDS`]: they say nothing about the complaint.
const STOP: &[&str] = &[
    "apa",
    "kapan",
    "mas",
    "bupati",
    "purbalingga",
    "kabupaten",
    "assalamualaikum",
    "assalamu",
    "alaikum",
    "wr",
    "wb",
    "selamat",
    "pagi",
    "siang",
    "sore",
    "malam",
    "nggih",
];

fn slang(word: &str) -> Option<&'static str> {
    SLANG.iter().find(|(k, _)| *k == word).map(|(_, v)| *v)
}

fn is_stop(word: &str) -> bool {
    is_function_word(word) || STOP.contains(&word)
}

/// The words of a text: lower case ASCII letters and digits, URLs and everything else
/// removed, letters repeated three or more times collapsed to one, `cepat2` → `cepat
/// cepat`, slang expanded.
pub fn words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for raw in text.split_whitespace() {
        let lower = raw.to_lowercase();
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("www.")
        {
            cleaned.push(' ');
            continue;
        }
        // Collapse runs of three or more of the same character.
        let chars: Vec<char> = lower.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let mut j = i;
            while j < chars.len() && chars[j] == c {
                j += 1;
            }
            let run = if j - i >= 3 { 1 } else { j - i };
            for _ in 0..run {
                cleaned.push(if c.is_ascii_alphanumeric() { c } else { ' ' });
            }
            i = j;
        }
        cleaned.push(' ');
    }
    let mut out = Vec::new();
    for w in cleaned.split_whitespace() {
        // Reduplication: "cepat2" is "cepat cepat".
        let (base, twice) = match w.strip_suffix('2') {
            Some(b) if b.len() >= 3 && b.chars().all(|c| c.is_ascii_alphabetic()) => (b, true),
            _ => (w, false),
        };
        let expanded = slang(base).unwrap_or(base);
        for _ in 0..(1 + usize::from(twice)) {
            out.extend(expanded.split(' ').map(str::to_owned));
        }
    }
    out
}

/// The normalised text: [`words`] joined by single spaces.
pub fn normalize(text: &str) -> String {
    words(text).join(" ")
}

/// Strips common Indonesian affixes: particles (`-nya`, `-lah`, `-kah`), then one suffix
/// (`-kan`, `-an`, `-i`), then one prefix (`meng-`, `mem-`, `di-`, `ber-`, `ter-`, `ke-`,
/// `se-`, `pe(ng)-` …), each only when enough of the word is left.
pub fn stem(word: &str) -> String {
    light_stem(word, &STEM).to_owned()
}

/// How the router strips affixes: a particle leaves four letters, a suffix five, and the
/// nasal forms of `me-` and `pe-` are prefixes too.
const STEM: LightStem = LightStem { particle_keep: 4, suffix_keep: 5, prefixes: PREFIXES };

/// The text the learned router reads: normalised words without function words and pure
/// numbers, stemmed.
pub fn features_text(text: &str) -> String {
    features_of(&words(text))
}

/// [`features_text`] of a text's [`words`].
pub fn features_of(words: &[String]) -> String {
    let mut out = String::new();
    for w in words {
        if is_stop(w) || w.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&stem(w));
    }
    out
}

/// Levenshtein distance over bytes, giving up (returning `limit + 1`) once it exceeds
/// `limit`.
pub fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(limit + 1)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(text: &str, want: Expect) {
        want.assert_eq(&format!("{}\n{}", normalize(text), features_text(text)));
    }

    #[test]
    fn slang_repeats_emoji_and_punctuation() {
        check(
            "Jln rusakkk bgt yg di ds. Karangklesem 😭 tolong cepat2!! https://t.co/x",
            expect![[r#"
                jalan rusak banget yang di desa karangklesem tolong cepat cepat
                jalan rusak banget desa karangklesem cepat cepat"#]],
        );
        check(
            "Pak, lampu PJU gk nyala udh 2 minggu, mohon perbaikannya",
            expect![[r#"
                pak lampu pju tidak nyala sudah 2 minggu mohon perbaikannya
                lampu pju nyala minggu rbai"#]],
        );
        check(
            "Sampah numpuk di TPS, bau bangettt... trimakasih",
            expect![[r#"
                sampah numpuk di tps bau banget terima kasih
                sampah numpuk tps bau banget"#]],
        );
    }

    /// Abbreviations and slang as residents write them, each to its standard words.
    #[test]
    fn abbreviations() {
        let cases = [
            ("jln", "jalan"),
            ("jl", "jalan"),
            ("yg", "yang"),
            ("tdk", "tidak"),
            ("gak", "tidak"),
            ("ga", "tidak"),
            ("blm", "belum"),
            ("blom", "belum"),
            ("sdh", "sudah"),
            ("udah", "sudah"),
            ("dg", "dengan"),
            ("dgn", "dengan"),
            ("kec", "kecamatan"),
            ("kel", "kelurahan"),
            ("ds", "desa"),
            ("kab", "kabupaten"),
            ("bln", "bulan"),
            ("thn", "tahun"),
            ("kmrn", "kemarin"),
            ("rmh", "rumah"),
            ("dpn", "depan"),
            ("gg", "gang"),
            ("tlg", "tolong"),
            ("pdhl", "padahal"),
            ("puskes", "puskesmas"),
            ("trimakasih", "terima kasih"),
        ];
        for (short, long) in cases {
            assert_eq!(normalize(short), long, "{short}");
            assert_eq!(normalize(&short.to_uppercase()), long, "{short} in capitals");
        }
        assert_eq!(
            normalize("Jl. Raya dpn rmh sdh 2 bln blom diperbaiki"),
            "jalan raya depan rumah sudah 2 bulan belum diperbaiki"
        );
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("karangklesem", "karangklesm", 2), 1);
        assert_eq!(edit_distance("kedungwringin", "kedungwringin", 2), 0);
        assert_eq!(edit_distance("sokaraja", "purwokerto", 2), 3);
    }
}
