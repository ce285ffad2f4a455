//! # samsde — check SDE models of Sharpness-Aware Minimization against the discrete algorithms
//!
//! (crate documentation is completed with the engine)

pub mod ensemble;
pub mod error;
pub mod landscape;
pub mod linalg;
pub mod optim;
pub mod oracle;
pub mod output;
pub mod plot;
pub mod report;
pub mod sde;
pub mod stats;
pub mod study;

pub use error::{Error, Result};
