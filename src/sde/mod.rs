//! SDE models of the SAM family (SPEC §3): closed forms, the general Monte Carlo form, the SAM
//! tables `φ, a, c`, linear (Ornstein–Uhlenbeck) models with exact moments and transitions, and
//! the second-order (weak order 2) models of SGD and USAM.

pub mod general;
pub mod linear;
pub mod model;
pub mod sam_tables;
pub mod second_order;

pub use model::{ModelKind, SdeForm, SdeModel};
