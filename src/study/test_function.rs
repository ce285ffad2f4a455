//! Test functions `g` of the weak-error definition (docs/theory.md §4):
//! `norm_sq` = `‖x‖²`, `loss` = `f(x)`, `norm_plus_grad_norm` = `‖x‖ + ‖∇f(x)‖` (Paper 1's choice).

use serde::{Deserialize, Serialize};

use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};

/// A test function of polynomial growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestFunction {
    /// `‖x‖²`.
    NormSq,
    /// `f(x)`.
    Loss,
    /// `‖x‖ + ‖∇f(x)‖`.
    NormPlusGradNorm,
}

impl TestFunction {
    /// Name as in configs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::NormSq => "norm_sq",
            Self::Loss => "loss",
            Self::NormPlusGradNorm => "norm_plus_grad_norm",
        }
    }
    /// Printed form.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::NormSq => "‖x‖²",
            Self::Loss => "f(x)",
            Self::NormPlusGradNorm => "‖x‖+‖∇f‖",
        }
    }

    /// `out[j] = g(xs[:, j])`; `scratch` is a `d × P` matrix used for gradients.
    pub fn eval_batch(self, f: &dyn Landscape, xs: &Matrix, out: &mut [f64], scratch: &mut Matrix) {
        match self {
            Self::NormSq => {
                for (o, c) in out.iter_mut().zip(xs.column_iter()) {
                    *o = c.norm_squared();
                }
            }
            Self::Loss => f.loss_batch(xs, out),
            Self::NormPlusGradNorm => {
                f.grad_batch(xs, scratch);
                for ((o, c), g) in out
                    .iter_mut()
                    .zip(xs.column_iter())
                    .zip(scratch.column_iter())
                {
                    *o = c.norm() + g.norm();
                }
            }
        }
    }

    /// `E g(x)` for `x ~ N(m, P)` on a centred quadratic with Hessian `h`, when it is a
    /// function of the first two moments (`‖x‖²`: `‖m‖² + tr P`; `f`: `½(mᵀHm + tr HP)`).
    pub fn gaussian_mean(self, h: &Matrix, m: &Vector, p: &Matrix) -> Option<f64> {
        match self {
            Self::NormSq => Some(m.norm_squared() + p.trace()),
            Self::Loss => Some(0.5 * (m.dot(&(h * m)) + (h * p).trace())),
            Self::NormPlusGradNorm => None,
        }
    }
}
