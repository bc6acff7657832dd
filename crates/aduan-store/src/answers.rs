//! The answers the store writes to residents on its own, built from a ticket's data by
//! [`aduan_core::texts`]: the words live there, the facts are gathered here, once for every
//! channel (the `CEK` answer queued at intake and the chat bot's `/cek` alike).

use std::collections::HashMap;

use aduan_core::TicketCode;
use aduan_core::texts::{self, StatusFacts};

use crate::TicketSummary;

/// The answer to "CEK {asked}" about `t` (the ticket `asked` names, or the one it was merged
/// into). OPDs are named by `opd_names`, else by their code.
pub(crate) fn status_answer(
    asked: TicketCode,
    t: &TicketSummary,
    opd_names: &HashMap<String, String>,
) -> String {
    // The deadline that runs now: the first response, then the resolution.
    let due = if t.first_responded_at.is_none() {
        Some(t.first_response_due_at)
    } else {
        t.resolution_due_at
    };
    texts::status_answer(&StatusFacts {
        asked,
        code: t.code,
        status: t.status,
        opd: t.opd.as_deref().map(|o| opd_names.get(o).map_or(o, String::as_str)),
        due,
        overdue: t.overdue,
        resolved_at: t.resolved_at,
    })
}
