"""diffrax peer (SDE problems only): `diffeqsolve` with `Euler`, fixed step dt0 = η,
`UnsafeBrownianPath`, drift `ODETerm` + `ControlTerm` with the d × d diffusion matrix,
`vmap`ped over paths (one key per path). CPU, float64; compilation excluded.

This is diffrax's natural formulation (drift and diffusion separately, the diffusion as a
matrix), so it does more products per step than the engine's u + sHu.
"""
import os

from common import SDE_PROBLEMS, parse_args

a = parse_args("diffrax", SDE_PROBLEMS)
if a.threads == 1:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import NORM_EPS, report, sam_table, timed  # noqa: E402

jax.config.update("jax_enable_x64", True)


def solver_fn(problem, d, steps):
    H = jnp.array(d["h"])
    sigma, rho, eta = d["sigma"], d["rho"], d["eta"]
    dim = d["dim"]
    sq_eta = np.sqrt(eta)
    eye = jnp.eye(dim)
    dr, phi_t, a_t, c_t = (jnp.asarray(v) for v in sam_table(d))
    grid = jnp.arange(phi_t.shape[0]) * dr

    def coeffs(x):
        g = H @ x
        nrm = jnp.linalg.norm(g)
        return g, nrm, 1.0 / (nrm + NORM_EPS)

    def drift(t, x, args):
        g, nrm, inv = coeffs(x)
        if problem == "usam_sde":
            s = rho
        elif problem == "dnsam_sde":
            s = rho * inv
        else:
            s = rho * jnp.interp(nrm / sigma, grid, phi_t) * inv
        return -(g + s * (H @ g))

    def diffusion(t, x, args):
        if problem == "usam_sde":
            return sq_eta * sigma * (eye + rho * H)
        g, nrm, inv = coeffs(x)
        if problem == "dnsam_sde":
            return sq_eta * sigma * (eye + rho * inv * H)
        ca = jnp.interp(nrm / sigma, grid, a_t)
        cc = jnp.interp(nrm / sigma, grid, c_t)
        gh = g * inv
        hgh = H @ gh
        # σI + (ρ/2)(CH + HC), C = a I + (c − a) ĝĝᵀ
        return sq_eta * (
            sigma * eye + rho * ca * H
            + 0.5 * rho * (cc - ca) * (jnp.outer(gh, hgh) + jnp.outer(hgh, gh))
        )

    def solve(x0, key):
        bm = diffrax.UnsafeBrownianPath(shape=(dim,), key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(
            terms, diffrax.Euler(), t0=0.0, t1=steps * eta, dt0=eta, y0=x0,
            saveat=diffrax.SaveAt(t1=True), max_steps=steps + 1,
            adjoint=diffrax.ForwardMode(),
        )
        x = sol.ys[-1]
        return x @ x

    return jax.vmap(solve)


def main():
    d = a.data
    for p in a.problems:
        run = solver_fn(p, d, a.steps)
        X = jax.random.normal(jax.random.PRNGKey(a.seed + 1), (a.paths, d["dim"]))
        keys = jax.random.split(jax.random.PRNGKey(a.seed), a.paths)
        compiled = jax.jit(run).lower(X, keys).compile()
        out, wall, cpu = timed(lambda: np.asarray(compiled(X, keys).block_until_ready()))
        report("diffrax", a, p, wall, cpu, out)


if __name__ == "__main__":
    main()
