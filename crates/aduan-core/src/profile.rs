//! One resident across channels (issue 20): which identifiers of a sender a provider
//! vouches for, so that reporters sharing one are linked into one resident profile.
//!
//! Only what a provider verified links automatically: the WhatsApp `wa_id` (the sender's
//! own number), an SMS sender's number, a phone number a Telegram user shared of themselves
//! (the connector keeps only the sender's own contact), and the sender of an inbound mail.
//! A contact typed into the web form or an Open311 request links nothing (anyone can type
//! anyone's number); such a reporter is only *suggested* to an operator, like a reporter of
//! the same name in the same desa.

use crate::{Channel, IdentityKind, Sender};

/// The provider-verified keys of a sender (`phone:+62…`, `email:…`), none for typed
/// contacts. Phones of every channel share one form (E.164), so a WhatsApp sender and an
/// SMS sender of the same number get the same key.
pub fn verified_keys(channel: Channel, sender: &Sender) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(channel, Channel::Web | Channel::Open311) {
        return out;
    }
    if let Some(id) = &sender.identity {
        match (channel, id.kind) {
            (Channel::Whatsapp, IdentityKind::Whatsapp) => {
                let digits: String = id.value.chars().filter(char::is_ascii_digit).collect();
                if !digits.is_empty() {
                    out.push(format!("phone:+{digits}"));
                }
            }
            (Channel::Sms, IdentityKind::Phone) => out.push(format!("phone:{}", id.value)),
            (Channel::Email, IdentityKind::Email) => out.push(format!("email:{}", id.value)),
            _ => {}
        }
    }
    if channel == Channel::Telegram {
        for c in sender.contacts.iter().filter(|c| c.kind == IdentityKind::Phone) {
            out.push(format!("phone:{}", c.value));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn sender(identity: Option<Identity>, contacts: Vec<Identity>) -> Sender {
        Sender { identity, display_name: None, contacts }
    }

    #[test]
    fn only_provider_verified_identifiers_link() {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        let sms = Identity::phone("081234567890").unwrap();
        let mail = Identity::email("Warga@Example.com").unwrap();
        let tg = Identity::new(IdentityKind::Telegram, "42").unwrap();
        let phone = "phone:+6281234567890";
        assert_eq!(verified_keys(Channel::Whatsapp, &sender(Some(wa), vec![])), [phone]);
        assert_eq!(verified_keys(Channel::Sms, &sender(Some(sms.clone()), vec![])), [phone]);
        assert_eq!(
            verified_keys(Channel::Email, &sender(Some(mail.clone()), vec![])),
            ["email:warga@example.com"]
        );
        // Telegram: the id links nothing, the shared own contact does.
        assert!(verified_keys(Channel::Telegram, &sender(Some(tg.clone()), vec![])).is_empty());
        let shared = sender(Some(tg), vec![sms.clone()]);
        assert_eq!(verified_keys(Channel::Telegram, &shared), [phone]);
        // Typed into a form: never.
        assert!(
            verified_keys(Channel::Web, &sender(Some(mail.clone()), vec![sms.clone()])).is_empty()
        );
        assert!(verified_keys(Channel::Open311, &sender(None, vec![sms, mail])).is_empty());
    }
}
