"""torchsde peer (SDE problems only): `sdeint(method="euler", dt=η)`, batch = paths,
`noise_type="general"` with the d × d diffusion matrix, float64, Debian's CPU torch
(`torch.set_num_threads(--threads)`). Brownian motion: torchsde's default for `sdeint`.

Run with the system python3 (Debian's python3-torch; see setup.sh).
"""
from common import SDE_PROBLEMS, parse_args

a = parse_args("torchsde", SDE_PROBLEMS)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchsde  # noqa: E402

from common import NORM_EPS, report, sam_table, timed  # noqa: E402

torch.set_num_threads(a.threads)
torch.set_default_dtype(torch.float64)


class Sde(torch.nn.Module):
    noise_type = "general"
    sde_type = "ito"

    def __init__(self, problem, d):
        super().__init__()
        self.problem = problem
        self.H = torch.tensor(d["h"])
        self.sigma, self.rho, self.eta = d["sigma"], d["rho"], d["eta"]
        self.sq_eta = float(np.sqrt(self.eta))
        self.dim = d["dim"]
        self.eye = torch.eye(self.dim)
        dr, phi_t, a_t, c_t = sam_table(d)
        self.dr = dr
        self.tab = torch.tensor(np.array([phi_t, a_t, c_t]))

    def interp(self, r):
        x = r / self.dr
        k = torch.clamp(x.floor().long(), max=self.tab.shape[1] - 2)
        t = torch.clamp(x - k, max=1.0)
        lo, hi = self.tab[:, k], self.tab[:, k + 1]
        return lo + t * (hi - lo)  # 3 × batch

    def f(self, t, x):
        g = x @ self.H
        nrm = g.norm(dim=1, keepdim=True)
        inv = 1.0 / (nrm + NORM_EPS)
        if self.problem == "usam_sde":
            s = self.rho
        elif self.problem == "dnsam_sde":
            s = self.rho * inv
        else:
            s = self.rho * self.interp(nrm[:, 0] / self.sigma)[0][:, None] * inv
        return -(g + s * (g @ self.H))

    def g(self, t, x):
        n = x.shape[0]
        if self.problem == "usam_sde":
            return (self.sq_eta * self.sigma * (self.eye + self.rho * self.H)).expand(n, -1, -1)
        g = x @ self.H
        nrm = g.norm(dim=1, keepdim=True)
        inv = 1.0 / (nrm + NORM_EPS)
        if self.problem == "dnsam_sde":
            return self.sq_eta * self.sigma * (
                self.eye + (self.rho * inv)[:, :, None] * self.H
            )
        _, ca, cc = self.interp(nrm[:, 0] / self.sigma)
        gh = g * inv
        hgh = gh @ self.H
        outer = gh[:, :, None] * hgh[:, None, :]
        return self.sq_eta * (
            self.sigma * self.eye + (self.rho * ca)[:, None, None] * self.H
            + (0.5 * self.rho * (cc - ca))[:, None, None] * (outer + outer.transpose(1, 2))
        )


def main():
    d = a.data
    torch.manual_seed(a.seed)
    for p in a.problems:
        sde = Sde(p, d)
        x0 = torch.randn(a.paths, d["dim"])
        ts = torch.tensor([0.0, a.steps * d["eta"]])

        def run():
            with torch.no_grad():
                xs = torchsde.sdeint(sde, x0, ts, method="euler", dt=d["eta"])
            x = xs[-1]
            return (x * x).sum(dim=1).numpy()

        out, wall, cpu = timed(run)
        report("torchsde", a, p, wall, cpu, out)


if __name__ == "__main__":
    main()
