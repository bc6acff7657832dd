//! Tracking codes: `ADU-` followed by 8 characters of Crockford base32 (40 random bits).
//!
//! Residents read codes aloud, retype them from SMS and paste them into emails, so input is
//! forgiving: any letter case, an optional hyphen after `ADU`, and the letters Crockford calls
//! ambiguous (`I`, `L` → `1`, `O` → `0`) are read as the digits they look like. The canonical
//! form is always upper case with the hyphen.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PREFIX: &str = "ADU-";
const BODY_LEN: usize = 8;

/// A ticket's public tracking code, always held in canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketCode([u8; BODY_LEN]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a tracking code starts with ADU-")]
    MissingPrefix,
    #[error("a tracking code has 8 characters after ADU-")]
    WrongLength,
    #[error("{0:?} is not a tracking-code character")]
    InvalidChar(char),
}

/// Maps one input character to its canonical Crockford symbol.
fn canonical(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        'I' | 'L' => '1',
        'O' => '0',
        other => other,
    };
    let b = u8::try_from(c).ok()?;
    ALPHABET.contains(&b).then_some(b)
}

impl TicketCode {
    /// Builds a code from 40 bits of entropy the caller drew from a CSPRNG.
    pub fn from_entropy(bytes: [u8; 5]) -> TicketCode {
        let mut n = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut body = [0u8; BODY_LEN];
        for slot in body.iter_mut().rev() {
            *slot = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        TicketCode(body)
    }

    pub fn as_str(&self) -> String {
        self.to_string()
    }

    /// Every well-formed code quoted in free text, in order of appearance, without repeats.
    /// A code must stand as its own word: `XADU-…` or a ninth code character don't count.
    pub fn find_all(text: &str) -> Vec<TicketCode> {
        let chars: Vec<char> = text.chars().collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i + 3 + BODY_LEN <= chars.len() {
            let starts_word = i == 0 || !chars[i - 1].is_alphanumeric();
            let is_prefix =
                chars[i..i + 3].iter().zip("ADU".chars()).all(|(a, b)| a.to_ascii_uppercase() == b);
            if starts_word && is_prefix {
                let mut j = i + 3;
                if chars.get(j) == Some(&'-') {
                    j += 1;
                }
                if j + BODY_LEN <= chars.len() {
                    let body: Option<Vec<u8>> =
                        chars[j..j + BODY_LEN].iter().map(|c| canonical(*c)).collect();
                    let ends_word = chars.get(j + BODY_LEN).is_none_or(|c| !c.is_alphanumeric());
                    if let (Some(body), true) = (body, ends_word) {
                        let mut arr = [0u8; BODY_LEN];
                        arr.copy_from_slice(&body);
                        let code = TicketCode(arr);
                        if !found.contains(&code) {
                            found.push(code);
                        }
                        i = j + BODY_LEN;
                        continue;
                    }
                }
            }
            i += 1;
        }
        found
    }
}

impl FromStr for TicketCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let head = s.get(..3).ok_or(CodeError::MissingPrefix)?;
        if !head.eq_ignore_ascii_case("ADU") {
            return Err(CodeError::MissingPrefix);
        }
        let rest = &s[3..];
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        if rest.chars().count() != BODY_LEN {
            return Err(CodeError::WrongLength);
        }
        let mut body = [0u8; BODY_LEN];
        for (slot, c) in body.iter_mut().zip(rest.chars()) {
            *slot = canonical(c).ok_or(CodeError::InvalidChar(c))?;
        }
        Ok(TicketCode(body))
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        // The body only ever holds ASCII symbols of ALPHABET.
        for b in self.0 {
            fmt::Write::write_char(f, char::from(b))?;
        }
        Ok(())
    }
}

impl fmt::Debug for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for TicketCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TicketCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_maps_to_canonical_codes() {
        assert_eq!(TicketCode::from_entropy([0; 5]).to_string(), "ADU-00000000");
        assert_eq!(TicketCode::from_entropy([0xff; 5]).to_string(), "ADU-ZZZZZZZZ");
        assert_eq!(
            TicketCode::from_entropy([0x01, 0x23, 0x45, 0x67, 0x89]).to_string(),
            "ADU-04HMASW9"
        );
    }

    #[test]
    fn parsing_is_forgiving_and_canonical() {
        let canonical: TicketCode = "ADU-7K3M9QXP".parse().unwrap();
        for input in ["adu-7k3m9qxp", "ADU7K3M9QXP", " Adu-7K3M9QXP ", "ADU-7K3M9QXP"] {
            assert_eq!(input.parse::<TicketCode>(), Ok(canonical), "{input}");
        }
        // Ambiguous letters read as digits.
        assert_eq!("adu-i0lo1111".parse::<TicketCode>().unwrap().to_string(), "ADU-10101111");
    }

    #[test]
    fn parsing_rejects_what_is_not_a_code() {
        assert_eq!("ADX-7K3M9QXP".parse::<TicketCode>(), Err(CodeError::MissingPrefix));
        assert_eq!("AD".parse::<TicketCode>(), Err(CodeError::MissingPrefix));
        assert_eq!("ADU-7K3M9QX".parse::<TicketCode>(), Err(CodeError::WrongLength));
        assert_eq!("ADU-7K3M9QXPP".parse::<TicketCode>(), Err(CodeError::WrongLength));
        // U is excluded from Crockford base32.
        assert_eq!("ADU-7K3M9QXU".parse::<TicketCode>(), Err(CodeError::InvalidChar('U')));
        assert_eq!("ADU-7K3M9QXé".parse::<TicketCode>(), Err(CodeError::InvalidChar('é')));
    }

    #[test]
    fn finds_codes_in_free_text() {
        let found = TicketCode::find_all(
            "Re: [ADU-7K3M9QXP] jalan rusak. cek adu-4hmasw9a lagi; ADU-7K3M9QXP sekali lagi",
        );
        let strs: Vec<String> = found.iter().map(|c| c.to_string()).collect();
        assert_eq!(strs, ["ADU-7K3M9QXP", "ADU-4HMASW9A"]);
    }

    #[test]
    fn ignores_codes_glued_to_other_words() {
        assert!(TicketCode::find_all("XADU-7K3M9QXP").is_empty());
        assert!(TicketCode::find_all("ADU-7K3M9QXPZ").is_empty());
        assert!(TicketCode::find_all("ADU-7K3M").is_empty());
        assert!(TicketCode::find_all("").is_empty());
    }

    #[test]
    fn serde_uses_the_canonical_string() {
        let code: TicketCode = serde_json::from_str("\"adu-7k3m9qxp\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"ADU-7K3M9QXP\"");
    }
}
