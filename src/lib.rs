//! # samsde — check SDE models of Sharpness-Aware Minimization against the discrete algorithms
//!
//! (crate documentation is completed with the engine)

pub mod error;
pub mod linalg;
pub mod plot;
pub mod sde;
pub mod stats;

pub use error::{Error, Result};
