"""NumPy peer: every problem vectorised over paths (X is paths × d), one Python loop over steps.

The USAM/DNSAM SDE step uses the same algebra as the engine, x += u + s H u with
u = −h∇f + √η σ ΔW (two products per step), so the comparison is of the machinery, not of
the formulation.
"""
import numpy as np

from common import NORM_EPS, parse_args, report, sam_table, timed


def run(problem, a):
    d = a.data
    H = np.array(d["h"])
    sigma, rho, eta = d["sigma"], d["rho"], d["eta"]
    h = eta
    P, n, dim = a.paths, a.steps, d["dim"]
    rng = np.random.default_rng(a.seed)
    X = rng.standard_normal((P, dim))
    sq_eta, sd = np.sqrt(eta), np.sqrt(h)
    if problem in ("usam_sde", "dnsam_sde"):
        for _ in range(n):
            g = X @ H
            u = -h * g + (sq_eta * sigma * sd) * rng.standard_normal((P, dim))
            hu = u @ H
            if problem == "usam_sde":
                X += u + rho * hu
            else:
                s = rho / (np.sqrt(np.einsum("ij,ij->i", g, g)) + NORM_EPS)
                X += u + s[:, None] * hu
    elif problem == "sam_sde":
        dr, phi_t, a_t, c_t = (np.asarray(v) for v in sam_table(d))
        grid = np.arange(len(phi_t)) * dr
        for _ in range(n):
            g = X @ H
            w = sd * rng.standard_normal((P, dim))
            hg = g @ H
            hw = w @ H
            nrm = np.sqrt(np.einsum("ij,ij->i", g, g))
            r = nrm / sigma
            phi, ca, cc = (np.interp(r, grid, t) for t in (phi_t, a_t, c_t))
            inv = 1.0 / (nrm + NORM_EPS)
            gw = np.einsum("ij,ij->i", g, w) * inv
            ghw = np.einsum("ij,ij->i", g, hw) * inv
            k = 0.5 * rho * (cc - ca)
            diff = sigma * w + (rho * ca)[:, None] * hw + (k * gw * inv)[:, None] * hg \
                + (k * ghw * inv)[:, None] * g
            coef = rho * phi * inv
            X += -h * g - (h * coef)[:, None] * hg + sq_eta * diff
    elif problem == "usam_discrete":
        for _ in range(n):
            z = sigma * rng.standard_normal((P, dim))
            gz = X @ H + z
            Y = X + rho * gz
            X -= eta * (Y @ H + z)
    elif problem == "sgd_subsampling":
        A = np.array(d["ls"]["a"])
        b = np.array(d["ls"]["b"])
        N, B = A.shape[0], d["ls"]["batch"]
        for _ in range(n):
            idx = np.argpartition(rng.random((P, N)), B, axis=1)[:, :B]  # B of N, no replacement
            As = A[idx]  # P × B × d
            res = np.einsum("pbd,pd->pb", As, X) - b[idx]
            X -= (eta / B) * np.einsum("pbd,pb->pd", As, res)
    return np.einsum("ij,ij->i", X, X)


def main():
    a = parse_args("numpy")
    for p in a.problems:
        out, wall, cpu = timed(run, p, a)
        report("numpy", a, p, wall, cpu, out)


if __name__ == "__main__":
    main()
