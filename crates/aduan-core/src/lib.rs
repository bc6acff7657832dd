//! The aduan domain, free of IO.
//!
//! Everything here is a function of data: the normalised inbound message every connector
//! produces, tracking codes, the ticket status machine, the audit event, the threading
//! decision and the response deadline. Nothing in this crate knows about tokio, sqlx, axum
//! or any network protocol; the store and the web layer call into it.

pub mod action_link;
pub mod calendar;
mod channel;
mod code;
pub mod confirm;
mod delivery;
mod event;
mod identity;
pub mod incident;
pub mod machine;
mod message;
mod outbound;
pub mod privacy;
pub mod profile;
mod resident;
pub mod sanitize;
mod sla;
mod status;
pub mod texts;
mod threading;
pub mod time;
pub mod words;

pub use calendar::{Budget, Calendar, Measure};
pub use channel::{Channel, UnknownChannel};
pub use code::{CodeError, TicketCode};
pub use delivery::{CallbackReceipt, DeliveryView};
pub use delivery::{
    DEFAULT_FALLBACK_ORDER, DeliveryHop, UndeliverableReason, address_on, next_fallback,
};
pub use delivery::{DeliveryReceipt, OutboxItem, ReceiptStatus, UnfetchedAttachment};
pub use event::{Actor, EventKind};
pub use identity::{
    DEFAULT_SMS_COUNTRY_PREFIX, Identity, IdentityError, IdentityKind, normalize_phone,
    valid_country_prefix,
};
pub use message::{
    AttachmentRef, Direction, InboundMessage, Location, LocationError, Sender, ThreadHints,
};
pub use outbound::{OutboxState, Purpose, ReplyRoute, choose_reply_route};
pub use resident::{
    IdentityField, IdentityPolicy, IdentityReply, parse_identity_reply, status_query,
};
pub use sanitize::{clean_line, clean_message, clean_text};
pub use sla::{Alert, ClockKind, ClockState, SlaPolicy, alert_due};
pub use status::{Status, TransitionError, UnknownStatus};
pub use texts::{
    DEFAULT_ACK_TEMPLATE, identity_request as identity_request_text, receipt as ack_text,
};
pub use threading::{SenderFacts, ThreadCandidate, ThreadDecision, ThreadingPolicy, decide_thread};
