//! The ticket lifecycle. Only the transitions listed in [`Status::successors`] exist; asking
//! for any other is an error the caller must show, never a silent no-op.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    AwaitingIdentity,
    Assigned,
    InProgress,
    Resolved,
    Rejected,
    Merged,
    /// Final: the resident confirmed the fix (or did not answer the confirmation in time).
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a ticket can't go from {from} to {to}")]
    Illegal { from: Status, to: Status },
    #[error("a ticket is assigned to an OPD with the assign action")]
    NeedsOpd,
    #[error("rejecting a ticket needs a reason in the note")]
    NeedsReason,
    #[error("tickets are merged with the merge action")]
    UseMerge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl Status {
    pub const ALL: [Status; 8] = [
        Status::New,
        Status::AwaitingIdentity,
        Status::Assigned,
        Status::InProgress,
        Status::Resolved,
        Status::Rejected,
        Status::Merged,
        Status::Closed,
    ];

    /// The statuses in which a ticket still waits for someone on our side.
    pub const OPEN: [Status; 4] =
        [Status::New, Status::AwaitingIdentity, Status::Assigned, Status::InProgress];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::AwaitingIdentity => "awaiting_identity",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Rejected => "rejected",
            Status::Merged => "merged",
            Status::Closed => "closed",
        }
    }

    /// The label residents and operators read: [`crate::texts::status_label`].
    pub fn label_id(self) -> &'static str {
        crate::texts::status_label(self)
    }

    pub fn is_open(self) -> bool {
        Status::OPEN.contains(&self)
    }

    /// Every status this one may move to.
    pub fn successors(self) -> &'static [Status] {
        use Status::*;
        match self {
            New => &[AwaitingIdentity, Assigned, InProgress, Resolved, Rejected, Merged],
            AwaitingIdentity => &[New, Assigned, Resolved, Rejected, Merged],
            Assigned => &[New, InProgress, Resolved, Rejected, Merged],
            InProgress => &[New, Assigned, Resolved, Rejected, Merged],
            // Reopened by the resident writing again, or by an operator.
            Resolved => &[New, Assigned, InProgress, Closed],
            // An operator taking back a rejection.
            Rejected => &[New],
            Merged => &[],
            // Final, but an operator may still reopen it, like a resolved ticket.
            Closed => &[New, Assigned, InProgress],
        }
    }

    pub fn can_become(self, to: Status) -> Result<(), TransitionError> {
        if self.successors().contains(&to) {
            Ok(())
        } else {
            Err(TransitionError::Illegal { from: self, to })
        }
    }

    /// Checks a status change requested through the status action, which can't assign
    /// (that needs an OPD) or merge (that needs a target) and must explain a rejection.
    pub fn check_status_action(
        self,
        to: Status,
        note: Option<&str>,
    ) -> Result<(), TransitionError> {
        match to {
            Status::Merged => return Err(TransitionError::UseMerge),
            Status::Assigned => return Err(TransitionError::NeedsOpd),
            Status::Rejected if note.is_none_or(|n| n.trim().is_empty()) => {
                return Err(TransitionError::NeedsReason);
            }
            _ => {}
        }
        self.can_become(to)
    }

    /// Where a closed ticket goes when its resident writes again: back to the OPD it was
    /// assigned to, or to triage. `None` when the message must not reopen it (rejected
    /// tickets stay rejected; spam writing again is still spam).
    pub fn reopened(self, has_opd: bool) -> Option<Status> {
        match self {
            Status::Resolved if has_opd => Some(Status::Assigned),
            Status::Resolved => Some(Status::New),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn transition_table() {
        let mut out = String::new();
        for from in Status::ALL {
            let to: Vec<&str> = Status::ALL
                .into_iter()
                .filter(|to| from.can_become(*to).is_ok())
                .map(Status::as_str)
                .collect();
            out.push_str(&format!("{from} -> {}\n", to.join(" ")));
        }
        expect![[r#"
            new -> awaiting_identity assigned in_progress resolved rejected merged
            awaiting_identity -> new assigned resolved rejected merged
            assigned -> new in_progress resolved rejected merged
            in_progress -> new assigned resolved rejected merged
            resolved -> new assigned in_progress closed
            rejected -> new
            merged -> 
            closed -> new assigned in_progress
        "#]]
        .assert_eq(&out);
    }

    #[test]
    fn no_status_moves_to_itself() {
        for s in Status::ALL {
            assert_eq!(s.can_become(s), Err(TransitionError::Illegal { from: s, to: s }));
        }
    }

    #[test]
    fn status_action_guards() {
        use Status::*;
        assert_eq!(New.check_status_action(Merged, None), Err(TransitionError::UseMerge));
        assert_eq!(New.check_status_action(Assigned, None), Err(TransitionError::NeedsOpd));
        assert_eq!(
            New.check_status_action(Rejected, Some("  ")),
            Err(TransitionError::NeedsReason)
        );
        assert_eq!(New.check_status_action(Rejected, Some("spam")), Ok(()));
        assert_eq!(
            Merged.check_status_action(Resolved, None),
            Err(TransitionError::Illegal { from: Merged, to: Resolved })
        );
    }

    #[test]
    fn reopening() {
        assert_eq!(Status::Resolved.reopened(true), Some(Status::Assigned));
        assert_eq!(Status::Resolved.reopened(false), Some(Status::New));
        assert_eq!(Status::Rejected.reopened(true), None);
        assert_eq!(Status::InProgress.reopened(true), None);
        for s in Status::ALL {
            if let Some(to) = s.reopened(true) {
                assert!(s.can_become(to).is_ok());
            }
        }
    }

    #[test]
    fn parses_api_values() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("ditutup".parse::<Status>().is_err());
        assert!(!Status::Closed.is_open());
    }
}
