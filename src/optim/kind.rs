//! Names of the SAM-family algorithms, as used in configs and JSON.

use serde::{Deserialize, Serialize};

/// SGD, USAM, SAM, DNSAM, or m-USAM (micro-batches; finite sums with subsampling only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmKind {
    /// `x ← x − η ∇f_γ(x)`.
    Sgd,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x))`.
    Usam,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x)/‖∇f_γ(x)‖)`.
    Sam,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x)/‖∇f(x)‖)`.
    Dnsam,
    /// m-USAM: `x ← x − η mean_j ∇f_{S_j}(x + ρ ∇f_{S_j}(x))` over a uniformly random partition
    /// of the batch into micro-batches `S_j` of size `m` (see [`super::msam`]). Its micro-batch
    /// size is a parameter of the study, so it is not in [`AlgorithmKind::ALL`] and steps through
    /// [`crate::ensemble::Dynamics::MicroBatch`], not [`super::Discrete`].
    Musam,
}

impl AlgorithmKind {
    /// The four that run on any oracle, in the order used in tables.
    pub const ALL: [AlgorithmKind; 4] = [Self::Sgd, Self::Usam, Self::Dnsam, Self::Sam];

    /// Lower-case name (`"usam"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Usam => "usam",
            Self::Sam => "sam",
            Self::Dnsam => "dnsam",
            Self::Musam => "musam",
        }
    }

    /// Parses a lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Self::Musam])
            .find(|k| k.name() == s)
    }
}

impl std::fmt::Display for AlgorithmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
