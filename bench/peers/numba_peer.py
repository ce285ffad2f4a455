"""numba peer: @njit loops over paths and steps, per-path scalar inner loops; `--variant
prange` runs the path loop in parallel (`parallel=True`, NUMBA_NUM_THREADS = --threads).

Each path draws from numba's per-thread NumPy generator. Compilation is excluded from the
timing (a small warm-up call compiles first). The SDE step uses x += u + s H u as the engine.
"""
import os

from common import parse_args

a = parse_args("numba")
os.environ.setdefault("NUMBA_NUM_THREADS", str(a.threads))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from common import NORM_EPS, report, sam_table, timed  # noqa: E402

PAR = a.variant == "prange"


def make(parallel):
    rng_loop = numba.prange if parallel else range

    @numba.njit(parallel=parallel, fastmath=False, cache=False)
    def sde(kind, X, H, sigma, rho, eta, steps, seed, grid_dr, phi_t, a_t, c_t):
        P, d = X.shape
        out = np.empty(P)
        h = eta
        sq_eta, sd = np.sqrt(eta), np.sqrt(h)
        for p in rng_loop(P):
            np.random.seed(seed + p)
            x = X[p].copy()
            g = np.empty(d)
            u = np.empty(d)
            hu = np.empty(d)
            hg = np.empty(d)
            w = np.empty(d)
            for _ in range(steps):
                for i in range(d):
                    s = 0.0
                    for j in range(d):
                        s += H[i, j] * x[j]
                    g[i] = s
                if kind < 2:  # usam (0) / dnsam (1): x += u + s H u
                    for i in range(d):
                        u[i] = -h * g[i] + sq_eta * sigma * sd * np.random.standard_normal()
                    for i in range(d):
                        s = 0.0
                        for j in range(d):
                            s += H[i, j] * u[j]
                        hu[i] = s
                    c = rho
                    if kind == 1:
                        nn = 0.0
                        for i in range(d):
                            nn += g[i] * g[i]
                        c = rho / (np.sqrt(nn) + 1e-12)
                    for i in range(d):
                        x[i] += u[i] + c * hu[i]
                else:  # sam
                    for i in range(d):
                        w[i] = sd * np.random.standard_normal()
                    for i in range(d):
                        s1 = 0.0
                        s2 = 0.0
                        for j in range(d):
                            s1 += H[i, j] * g[j]
                            s2 += H[i, j] * w[j]
                        hg[i] = s1
                        hu[i] = s2
                    nn = 0.0
                    gw = 0.0
                    ghw = 0.0
                    for i in range(d):
                        nn += g[i] * g[i]
                        gw += g[i] * w[i]
                        ghw += g[i] * hu[i]
                    nrm = np.sqrt(nn)
                    r = nrm / sigma
                    k0 = min(int(r / grid_dr), len(phi_t) - 2)
                    t = min(r / grid_dr - k0, 1.0)
                    phi = phi_t[k0] + t * (phi_t[k0 + 1] - phi_t[k0])
                    ca = a_t[k0] + t * (a_t[k0 + 1] - a_t[k0])
                    cc = c_t[k0] + t * (c_t[k0 + 1] - c_t[k0])
                    inv = 1.0 / (nrm + 1e-12)
                    gw *= inv
                    ghw *= inv
                    kk = 0.5 * rho * (cc - ca)
                    coef = rho * phi * inv
                    for i in range(d):
                        diff = sigma * w[i] + rho * ca * hu[i] + kk * gw * inv * hg[i] \
                            + kk * ghw * inv * g[i]
                        x[i] += -h * g[i] - h * coef * hg[i] + sq_eta * diff
            nn = 0.0
            for i in range(d):
                nn += x[i] * x[i]
            out[p] = nn
        return out

    @numba.njit(parallel=parallel)
    def usam_discrete(X, H, sigma, rho, eta, steps, seed):
        P, d = X.shape
        out = np.empty(P)
        for p in rng_loop(P):
            np.random.seed(seed + p)
            x = X[p].copy()
            z = np.empty(d)
            y = np.empty(d)
            for _ in range(steps):
                for i in range(d):
                    z[i] = sigma * np.random.standard_normal()
                for i in range(d):
                    s = 0.0
                    for j in range(d):
                        s += H[i, j] * x[j]
                    y[i] = x[i] + rho * (s + z[i])
                for i in range(d):
                    s = 0.0
                    for j in range(d):
                        s += H[i, j] * y[j]
                    z[i] = s + z[i]
                for i in range(d):
                    x[i] -= eta * z[i]
            nn = 0.0
            for i in range(d):
                nn += x[i] * x[i]
            out[p] = nn
        return out

    @numba.njit(parallel=parallel)
    def sgd_sub(X, A, b, B, eta, steps, seed):
        P, d = X.shape
        N = A.shape[0]
        out = np.empty(P)
        for p in rng_loop(P):
            np.random.seed(seed + p)
            x = X[p].copy()
            grad = np.empty(d)
            idx = np.empty(B, np.int64)
            for _ in range(steps):
                # Floyd's algorithm: B distinct of N.
                for m in range(B):
                    j = N - B + m
                    t = np.random.randint(0, j + 1)
                    dup = False
                    for q in range(m):
                        if idx[q] == t:
                            dup = True
                    idx[m] = j if dup else t
                for i in range(d):
                    grad[i] = 0.0
                for m in range(B):
                    ii = idx[m]
                    r = -b[ii]
                    for i in range(d):
                        r += A[ii, i] * x[i]
                    for i in range(d):
                        grad[i] += A[ii, i] * r
                for i in range(d):
                    x[i] -= eta / B * grad[i]
            nn = 0.0
            for i in range(d):
                nn += x[i] * x[i]
            out[p] = nn
        return out

    return sde, usam_discrete, sgd_sub


def main():
    d = a.data
    sde, usam_discrete, sgd_sub = make(PAR)
    H = np.array(d["h"])
    A = np.array(d["ls"]["a"])
    b = np.array(d["ls"]["b"])
    dr, phi_t, a_t, c_t = (np.asarray(v, dtype=np.float64) for v in sam_table(d))
    dr = float(dr)
    sigma, rho, eta = d["sigma"], d["rho"], d["eta"]
    rng = np.random.default_rng(a.seed)

    def call(problem, X, steps):
        if problem in ("usam_sde", "dnsam_sde", "sam_sde"):
            kind = ["usam_sde", "dnsam_sde", "sam_sde"].index(problem)
            return sde(kind, X, H, sigma, rho, eta, steps, a.seed, dr, phi_t, a_t, c_t)
        if problem == "usam_discrete":
            return usam_discrete(X, H, sigma, rho, eta, steps, a.seed)
        return sgd_sub(X, A, b, d["ls"]["batch"], eta, steps, a.seed)

    for p in a.problems:
        call(p, rng.standard_normal((8, d["dim"])), 2)  # compile
        X = rng.standard_normal((a.paths, d["dim"]))
        out, wall, cpu = timed(call, p, X, a.steps)
        report("numba", a, p, wall, cpu, out)


if __name__ == "__main__":
    main()
