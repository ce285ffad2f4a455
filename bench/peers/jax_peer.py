"""JAX peer: `lax.scan` over steps of a per-path step `vmap`ped over paths, CPU, float64.

One thread: XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
(run.sh sets it for --threads 1). Compilation is excluded: the function is lowered and
compiled before the timed call. The SDE step uses x += u + s H u as the engine.
"""
import os

from common import parse_args

a = parse_args("jax")
if a.threads == 1:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import NORM_EPS, report, sam_table, timed  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")


def step_fn(problem, d):
    H = jnp.array(d["h"])
    sigma, rho, eta = d["sigma"], d["rho"], d["eta"]
    h = eta
    sq_eta, sd = np.sqrt(eta), np.sqrt(h)
    dr, phi_t, a_t, c_t = (jnp.asarray(v) for v in sam_table(d))
    grid = jnp.arange(phi_t.shape[0]) * dr
    A = jnp.array(d["ls"]["a"])
    b = jnp.array(d["ls"]["b"])
    N, B = A.shape[0], d["ls"]["batch"]
    dim = d["dim"]

    def one(x, key):
        if problem in ("usam_sde", "dnsam_sde"):
            g = H @ x
            u = -h * g + sq_eta * sigma * sd * jax.random.normal(key, (dim,))
            s = rho if problem == "usam_sde" else rho / (jnp.linalg.norm(g) + NORM_EPS)
            return x + u + s * (H @ u)
        if problem == "sam_sde":
            g = H @ x
            w = sd * jax.random.normal(key, (dim,))
            hg, hw = H @ g, H @ w
            nrm = jnp.linalg.norm(g)
            r = nrm / sigma
            phi, ca, cc = (jnp.interp(r, grid, t) for t in (phi_t, a_t, c_t))
            inv = 1.0 / (nrm + NORM_EPS)
            k = 0.5 * rho * (cc - ca)
            diff = sigma * w + rho * ca * hw + k * (g @ w) * inv * inv * hg \
                + k * (g @ hw) * inv * inv * g
            return x - h * g - h * rho * phi * inv * hg + sq_eta * diff
        if problem == "usam_discrete":
            z = sigma * jax.random.normal(key, (dim,))
            y = x + rho * (H @ x + z)
            return x - eta * (H @ y + z)
        idx = jax.random.choice(key, N, (B,), replace=False)
        As = A[idx]
        return x - (eta / B) * (As.T @ (As @ x - b[idx]))

    batched = jax.vmap(one)

    def run(X, key, steps):
        def body(X, k):
            keys = jax.random.split(jax.random.fold_in(key, k), X.shape[0])
            return batched(X, keys), None

        X, _ = jax.lax.scan(body, X, jnp.arange(steps))
        return jnp.sum(X * X, axis=1)

    return run


def main():
    d = a.data
    for p in a.problems:
        run = step_fn(p, d)
        X = jax.random.normal(jax.random.PRNGKey(a.seed + 1), (a.paths, d["dim"]))
        key = jax.random.PRNGKey(a.seed)
        compiled = jax.jit(run, static_argnums=2).lower(X, key, a.steps).compile()
        out, wall, cpu = timed(lambda: np.asarray(compiled(X, key).block_until_ready()))
        report("jax", a, p, wall, cpu, out)


if __name__ == "__main__":
    main()
