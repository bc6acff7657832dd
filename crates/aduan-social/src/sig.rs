//! The signature schemes of Meta and X: HMAC-SHA256 over the raw request bytes, compared in
//! constant time (`Mac::verify_slice`), never over a re-serialised document.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` can't fail for it.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac
}

/// Checks Meta's `X-Hub-Signature-256` header (`sha256=` + hex HMAC-SHA256 of the raw body
/// keyed with the app secret). Hex case is ignored; the digest bytes are compared in
/// constant time.
pub fn meta_signature_ok(app_secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest.trim()) else {
        return false;
    };
    mac(app_secret, body).verify_slice(&expected).is_ok()
}

/// The `X-Hub-Signature-256` value Meta would send for `body` (for tests and tools).
pub fn meta_signature(app_secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(app_secret, body).finalize().into_bytes()))
}

/// X's `sha256=` + base64 HMAC-SHA256 keyed with the consumer secret: the CRC
/// `response_token` for a `crc_token`, and the `x-twitter-webhooks-signature` of a body.
pub fn x_signature(consumer_secret: &[u8], data: &[u8]) -> String {
    format!("sha256={}", STANDARD.encode(mac(consumer_secret, data).finalize().into_bytes()))
}

/// Checks X's `x-twitter-webhooks-signature` header over the raw body, in constant time.
pub fn x_signature_ok(consumer_secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(b64) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(b64.trim()) else {
        return false;
    };
    mac(consumer_secret, body).verify_slice(&expected).is_ok()
}

/// Compares two secrets (Meta's `hub.verify_token`) in constant time.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    // Comparing the HMACs of both under one key hides the length and the content.
    let key = b"aduan verify-token comparison";
    let expected = mac(key, a).finalize().into_bytes();
    mac(key, b).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the protocol reference, computed with Python's hmac module.
    #[test]
    fn meta_vectors() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
        assert_eq!(meta_signature(b"test_app_secret", body), header);
        assert!(meta_signature_ok(b"test_app_secret", body, header));
        assert!(meta_signature_ok(
            b"test_app_secret",
            body,
            &header.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!meta_signature_ok(b"other_secret", body, header));
        assert!(!meta_signature_ok(b"test_app_secret", b"{}", header));
        assert!(!meta_signature_ok(b"test_app_secret", body, "sha1=dec6a680"));
        assert!(!meta_signature_ok(b"test_app_secret", body, "sha256=zz"));
        assert!(!meta_signature_ok(b"test_app_secret", body, ""));
        // Escaped and raw UTF-8 forms of the same text are different bytes: both verify
        // against their own signature and never against each other's.
        let escaped = br#"{"text":"\u00e4\u00f6\u00e5"}"#;
        let raw = "{\"text\":\"äöå\"}".as_bytes();
        assert!(meta_signature(b"test_app_secret", escaped).starts_with("sha256=02331cad"));
        assert!(meta_signature(b"test_app_secret", raw).starts_with("sha256=1156bb88"));
        let sig = meta_signature(b"test_app_secret", escaped);
        assert!(!meta_signature_ok(b"test_app_secret", raw, &sig));
    }

    #[test]
    fn x_vectors() {
        // X DevRel's sample consumer secret and CRC token.
        assert_eq!(
            x_signature(
                b"z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
                b"9b4507b3-9040-4669-9ca3-6b94edb50553"
            ),
            "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
        );
        let body = br#"{"for_user_id":"2244994945","direct_message_events":[]}"#;
        let header = "sha256=eU1GMFmnc55gVKUMq+cDIdLFHPVKL9IY+fkxwzq7SsM=";
        assert_eq!(x_signature(b"consumer_secret", body), header);
        assert!(x_signature_ok(b"consumer_secret", body, header));
        assert!(!x_signature_ok(b"consumer_secret", b"{}", header));
        assert!(!x_signature_ok(b"other", body, header));
        assert!(!x_signature_ok(b"consumer_secret", body, "sha256=!!!"));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
        assert!(!secret_eq(b"", b"a"));
    }
}
