//! The automatic conversation with residents: asking for a usable identity, reading the
//! answer, and answering "CEK ADU-…" with the ticket's status.
//!
//! A complaint is acted on when the reporter is identifiable ("menyertakan identitas pengadu
//! secara jelas"): a name and a way to reach them, and (configurable) an address. Reporters
//! may ask for *rahasia*: their identity is then hidden from officials and the public.

use crate::TicketCode;

/// Which parts of an identity a ticket needs before it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// Ask when the reporter has no identity at all. `false` routes every ticket as it is.
    pub enabled: bool,
    pub require_name: bool,
    /// A channel we can write back on (email, phone, chat).
    pub require_contact: bool,
    /// Where they live (desa/kecamatan).
    pub require_address: bool,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        IdentityPolicy {
            enabled: true,
            require_name: true,
            require_contact: true,
            require_address: false,
        }
    }
}

/// A part of the identity a ticket still lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityField {
    Name,
    Contact,
    Address,
}

impl IdentityField {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityField::Name => "name",
            IdentityField::Contact => "contact",
            IdentityField::Address => "address",
        }
    }
}

impl IdentityPolicy {
    /// What the reporter still has to give. A name of fewer than two letters is no name.
    pub fn missing(
        &self,
        name: Option<&str>,
        reachable: bool,
        address: Option<&str>,
    ) -> Vec<IdentityField> {
        if !self.enabled {
            return Vec::new();
        }
        let usable = |s: Option<&str>| {
            s.is_some_and(|s| s.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        };
        let mut out = Vec::new();
        if self.require_name && !usable(name) {
            out.push(IdentityField::Name);
        }
        if self.require_contact && !reachable {
            out.push(IdentityField::Contact);
        }
        if self.require_address && !usable(address) {
            out.push(IdentityField::Address);
        }
        out
    }
}

/// What a resident's answer says about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityReply {
    pub name: Option<String>,
    pub address: Option<String>,
    pub contact: Option<String>,
    /// They asked for *rahasia*.
    pub confidential: bool,
}

impl IdentityReply {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.address.is_none()
            && self.contact.is_none()
            && !self.confidential
    }
}

const ADDRESS_CUES: [&str; 12] = [
    "desa",
    "ds",
    "kelurahan",
    "kel",
    "kecamatan",
    "kec",
    "dusun",
    "rt",
    "rw",
    "jalan",
    "jl",
    "grumbul",
];

fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '-' | '"'))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_word(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric()).find(|w| !w.is_empty()).unwrap_or("").to_lowercase()
}

/// Words of complaints and small talk that are nobody's name.
const NOT_NAMES: [&str; 40] = [
    "jalan",
    "jalannya",
    "masih",
    "rusak",
    "pak",
    "bu",
    "tolong",
    "mohon",
    "yang",
    "yg",
    "sudah",
    "belum",
    "tidak",
    "kapan",
    "apa",
    "ada",
    "dan",
    "di",
    "ke",
    "dari",
    "ini",
    "itu",
    "terima",
    "kasih",
    "ya",
    "min",
    "admin",
    "kami",
    "baik",
    "oke",
    "ok",
    "iya",
    "air",
    "sampah",
    "lampu",
    "mati",
    "banjir",
    "sama",
    "gimana",
    "bagaimana",
];

fn looks_like_name(s: &str) -> bool {
    let words: Vec<&str> = s.split_whitespace().collect();
    !words.is_empty()
        && !words.iter().any(|w| NOT_NAMES.contains(&w.to_lowercase().trim_matches('.')))
        && words.len() <= 5
        && s.chars()
            .all(|c| c.is_alphabetic() || c.is_whitespace() || matches!(c, '.' | '\'' | '-'))
        && s.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && !ADDRESS_CUES.contains(&first_word(s).as_str())
}

/// Reads a name, an address and *rahasia* from a free-text answer such as
/// `"Nama: Budi Santoso, alamat Desa Kedungwringin Kec. Jatilawang"`, `"saya Budi, ds
/// Kedungwringin"` or `"Budi Santoso\nDesa Kedungwringin, Jatilawang. rahasia"`. Labelled
/// parts win; unlabelled ones are taken when they clearly look like a name (letters only, at
/// most five words) or an address (starting with desa/kec/dusun/rt/jalan …).
pub fn parse_identity_reply(text: &str) -> IdentityReply {
    let mut out = IdentityReply::default();
    let lower = text.to_lowercase();
    out.confidential = lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "rahasia" | "dirahasiakan" | "rahasiakan" | "anonim"));
    // Split into parts at line breaks, commas and semicolons.
    let parts: Vec<&str> =
        text.split(['\n', ',', ';']).map(str::trim).filter(|p| !p.is_empty()).collect();
    let mut address_parts: Vec<String> = Vec::new();
    for part in parts {
        let lower = part.to_lowercase();
        let label = |names: &[&str]| {
            names.iter().find_map(|n| {
                let rest = lower.strip_prefix(n)?;
                let cut = part.len() - rest.len();
                rest.starts_with([':', ' ', '='])
                    .then(|| clean(&part[cut..]))
                    .filter(|s| !s.is_empty())
            })
        };
        if let Some(v) = label(&["nama saya", "nama lengkap", "nama"]) {
            // "Nama: Budi alamat Desa X" on one line.
            let (name, rest) = match v.to_lowercase().find(" alamat") {
                Some(i) => (clean(&v[..i]), Some(clean(&v[i + 7..]))),
                None => (v.clone(), None),
            };
            if looks_like_name(&name) {
                out.name.get_or_insert(name);
            }
            if let Some(r) = rest.filter(|r| !r.is_empty()) {
                address_parts.push(r);
            }
        } else if let Some(v) = label(&["alamat saya", "alamat"]) {
            address_parts.push(v);
        } else if let Some(v) = label(&["no hp", "nomor hp", "hp", "wa", "telp", "email"]) {
            out.contact.get_or_insert(v);
        } else if let Some(v) = label(&["saya"]).filter(|v| looks_like_name(v)) {
            out.name.get_or_insert(v);
        } else if ADDRESS_CUES.contains(&first_word(part).as_str()) {
            address_parts.push(clean(part));
        } else {
            let words: String = part
                .split_whitespace()
                .filter(|w| {
                    !matches!(w.to_lowercase().trim_matches('.'), "rahasia" | "dirahasiakan")
                })
                .collect::<Vec<_>>()
                .join(" ");
            let words = clean(&words);
            if out.name.is_none() && address_parts.is_empty() && looks_like_name(&words) {
                out.name = Some(words);
            } else if !address_parts.is_empty() && looks_like_name(&words) {
                // "Desa Kedungwringin, Jatilawang": the kecamatan after the desa.
                address_parts.push(words);
            }
        }
    }
    if !address_parts.is_empty() {
        let joined = address_parts.join(", ");
        let kept: Vec<&str> = joined
            .split_whitespace()
            .filter(|w| {
                let w = w.to_lowercase();
                let w = w.trim_matches(|c: char| !c.is_alphanumeric());
                !matches!(w, "rahasia" | "dirahasiakan" | "rahasiakan" | "mohon")
            })
            .collect();
        out.address = Some(clean(&kept.join(" "))).filter(|a| !a.is_empty());
    }
    out
}

/// The ticket code of a status question ("CEK ADU-7K3M9QXP", "cek status ADU7K3M9QXP").
/// Only short messages that start with CEK count: a complaint quoting its code is not a
/// question.
pub fn status_query(text: &str) -> Option<TicketCode> {
    let t = text.trim();
    if t.chars().count() > 60 {
        return None;
    }
    let first = first_word(t);
    if !matches!(first.as_str(), "cek" | "cekstatus" | "status" | "lacak") {
        return None;
    }
    let codes = TicketCode::find_all(t);
    match codes.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn show(r: &IdentityReply) -> String {
        format!(
            "name={:?} address={:?} contact={:?} rahasia={}",
            r.name, r.address, r.contact, r.confidential
        )
    }

    #[test]
    fn identity_answers_as_residents_write_them() {
        let check = |text: &str, want: expect_test::Expect| {
            want.assert_eq(&show(&parse_identity_reply(text)));
        };
        check(
            "Nama: Budi Santoso, Alamat: Desa Kedungwringin Kec. Jatilawang",
            expect![[
                r#"name=Some("Budi Santoso") address=Some("Desa Kedungwringin Kec. Jatilawang") contact=None rahasia=false"#
            ]],
        );
        check(
            "nama saya siti aminah alamat ds karangklesem purwokerto selatan. mohon dirahasiakan",
            expect![[
                r#"name=Some("siti aminah") address=Some("ds karangklesem purwokerto selatan") contact=None rahasia=true"#
            ]],
        );
        check(
            "Budi Santoso\nDesa Kedungwringin, Jatilawang",
            expect![[
                r#"name=Some("Budi Santoso") address=Some("Desa Kedungwringin, Jatilawang") contact=None rahasia=false"#
            ]],
        );
        check(
            "saya Wahyu, rt 02 rw 05 desa Pliken. RAHASIA",
            expect![[
                r#"name=Some("Wahyu") address=Some("rt 02 rw 05 desa Pliken") contact=None rahasia=true"#
            ]],
        );
        check(
            "jalannya masih rusak pak, kapan diperbaiki?",
            expect!["name=None address=None contact=None rahasia=false"],
        );
    }

    #[test]
    fn missing_fields_follow_the_policy() {
        let p = IdentityPolicy::default();
        assert_eq!(p.missing(None, true, None), vec![IdentityField::Name]);
        assert_eq!(p.missing(Some("Siti"), true, None), vec![]);
        assert_eq!(
            p.missing(Some("4"), false, None),
            vec![IdentityField::Name, IdentityField::Contact]
        );
        let strict = IdentityPolicy { require_address: true, ..p };
        assert_eq!(strict.missing(Some("Siti"), true, None), vec![IdentityField::Address]);
        assert_eq!(IdentityPolicy { enabled: false, ..strict }.missing(None, false, None), vec![]);
    }

    #[test]
    fn status_questions() {
        let code = TicketCode::from_entropy([1, 2, 3, 4, 5]);
        assert_eq!(status_query(&format!("CEK {code}")), Some(code));
        assert_eq!(
            status_query(&format!("cek {}", code.to_string().replace('-', "").to_lowercase())),
            Some(code)
        );
        assert_eq!(status_query(&format!("Cek status {code} ya min")), Some(code));
        assert_eq!(status_query(&format!("jalan masih rusak, lihat {code}")), None);
        assert_eq!(status_query("cek"), None);
    }
}
