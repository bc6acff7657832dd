//! Routing and deadlines.
//!
//! The pure part turns a complaint into a routing decision: [`text`] (Indonesian as
//! residents write it), [`gazetteer`] (kecamatan and desa names), [`registry`] (the OPD
//! file), [`rules`] (keywords), [`model`] (the learned router), [`router`] (all of them
//! combined), [`eval`] (`aduan routing eval`) and [`notify`] (the mails to officials). None
//! of it does IO.
//!
//! The thin async shell is [`worker`]: the routing worker claims unrouted tickets, asks for
//! missing identities and disposes tickets; the deadline watcher sends warnings and
//! escalations. Time comes from a [`worker::Clock`] so tests can move it.

pub mod eval;
pub mod gazetteer;
pub mod history;
pub mod links;
pub mod model;
pub mod notify;
pub mod registry;
pub mod router;
pub mod rules;
pub mod stemmer;
pub mod text;
pub mod worker;

pub use gazetteer::{Gazetteer, Place};
pub use model::{Doc, Model, TrainConfig};
pub use registry::{Category, Opd, OpdFile};
pub use router::{Decision, Router, RouterConfig, Suggestion};

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("csv: {0}")]
    Csv(String),
    #[error("{0}")]
    Eval(String),
    #[error(transparent)]
    Store(#[from] aduan_store::StoreError),
}
