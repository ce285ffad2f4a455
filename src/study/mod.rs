//! Studies: each turns a validated configuration into a report (`Config → validate → run →
//! Report`). Nothing here writes files or knows about the CLI; see [`crate::output`] and the
//! binary for that.

pub mod budget;
pub mod convergence;
pub mod flatness;
pub mod header;
pub mod implicit_bias;
pub mod kinks;
pub mod msharpness;
mod parse_errors;
pub mod rho_sweep;
pub mod saddle;
pub mod sam_rate;
pub mod setup;
pub mod test_function;
pub mod trajectories;
pub mod verdict;
