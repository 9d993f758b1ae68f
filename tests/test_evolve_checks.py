"""evolve's argument checks (the same eager and compiled) and its checks between accepted steps:
a jump of the watched band's state (a band touching stepped over) and Hermiticity along the path.

Independent numbers: the Landau-Zener probability P = exp(-pi Delta^2 / (v E)) (P = 1 at an exact
touching), the full-band populations, and the closed-form anomalous displacement of the Abelian
sweep, int Omega dkx = v^2 K / (Delta sqrt(v^2 K^2 + Delta^2)).
"""

import time
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax.models import AbstractModel

# What a failed run-time check raises from compiled code: equinox's error, or (plain jax.jit) jax's,
# whose type varies with the dispatch path (JaxRuntimeError, or ValueError for an INTERNAL status).
RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError, ValueError)
RAISED = np.array([[0.0, 1.0], [0.0, 0.0]])


class LeakyDirac(AbstractModel):
    """H = kx sx + ky sy + Delta sz + gamma max(kx - k_leak, 0) |0><1|: the massive Dirac cone
    (v = 1), Hermitian where kx <= k_leak and not beyond (gamma != 0)."""

    mass: jax.Array
    gamma: jax.Array
    k_leak: jax.Array
    dim: ClassVar[int] = 2
    n_bands: ClassVar[int] = 2

    def __call__(self, x, k):
        h = jnp.array([[self.mass, k[0] - 1j * k[1]], [k[0] + 1j * k[1], -self.mass]])
        return h + self.gamma * jnp.maximum(k[0] - self.k_leak, 0.0) * RAISED


def _model(mass, gamma=0.0, k_leak=0.0):
    return LeakyDirac(
        jnp.asarray(mass, float), jnp.asarray(gamma, float), jnp.asarray(k_leak, float)
    )


# ---------------------------------------------------------------------------------------------
# argument checks: every argument, eager (ValueError with the value) and jit + vmap (run-time
# error with the same text, raised before the solve: a bad member fails the whole batch)

GOOD = dict(
    mass=0.5,
    gamma=0.0,
    k_leak=0.0,
    x0=[0.0, 0.0],
    k0=[-0.5, 0.0],
    t0=0.0,
    t1=2.0,
    e=[-0.5, 0.0],
    chi0=[1.0, 0.0],
    ts=[0.5, 1.0, 2.0],
)


def _full_run(a, throw=False):
    return sj.evolve(
        _model(a["mass"], a["gamma"], a["k_leak"]),
        a["x0"],
        a["k0"],
        t0=a["t0"],
        t1=a["t1"],
        field=a["e"],
        chi0=a["chi0"],
        saveat=a["ts"],
        method="full",
        throw=throw,
    )


_full_batch = jax.jit(jax.vmap(_full_run))  # one compilation for every call below


def _batch(**changes):
    """Two members: GOOD, and GOOD with ``changes``."""
    bad = {**GOOD, **changes}
    return {n: jnp.stack([jnp.asarray(GOOD[n]), jnp.asarray(bad[n])]) for n in GOOD}


BAD_ARGUMENTS = [
    (dict(t1=np.nan), r"t1 must be finite"),
    (dict(t0=np.inf), r"t0 must be finite"),
    (dict(t1=-1.0), r"t1 must be later than t0"),
    (dict(ts=[0.5, np.nan, 2.0]), r"saveat times must be finite"),
    (dict(ts=[1.0, 0.5, 2.0]), r"saveat times must be non-decreasing and lie in \[t0, t1\]"),
    (dict(ts=[0.5, 1.0, 3.0]), r"saveat times must be non-decreasing and lie in \[t0, t1\]"),
    (dict(x0=[np.nan, 0.0]), r"x0 must be finite"),
    (dict(k0=[0.0, np.inf]), r"k0 must be finite"),
    (dict(e=[np.nan, 0.0]), r"field E\(x0, t0\) must be finite"),
    (dict(chi0=[np.nan, 0.0]), r"chi0 must be finite"),
    (dict(chi0=[1.0, 1.0]), r"chi0 must be normalised"),
    (dict(mass=np.nan), r"model parameter 'mass' is not finite"),
    (dict(gamma=0.3, k_leak=-5.0), r"model\(x, k\) is not Hermitian at the initial point"),
]


@pytest.mark.parametrize("changes, message", BAD_ARGUMENTS)
def test_bad_argument_is_named_eager_and_compiled(changes, message):
    """Eager: ValueError naming the argument and its value, before any solve. Under jit + vmap
    (one bad member of two): equinox's run-time error with the same text, within seconds, i.e.
    before the solve (a NaN state would otherwise run max_steps = 2^20 steps)."""
    with pytest.raises(ValueError, match=message + r".*(got|:|at)"):
        _full_run({**GOOD, **{n: jnp.asarray(v) for n, v in changes.items()}}, throw=True)
    _full_batch(_batch())  # compiled (once for the module)
    start = time.perf_counter()
    with pytest.raises(RUNTIME_ERRORS, match=message):
        jax.block_until_ready(_full_batch(_batch(**changes)))
    assert time.perf_counter() - start < 5.0


def test_static_arguments_are_checked():
    """rtol, atol, adiabaticity_limit: positive and finite, named (static: always eager)."""
    model = _model(0.5)
    k0 = jnp.array([0.1, 0.0])
    for name, value in (("rtol", np.nan), ("atol", -1e-9), ("adiabaticity_limit", 0.0)):
        with pytest.raises(ValueError, match=rf"{name} must be a positive finite number, got"):
            sj.evolve(model, None, k0, t1=1.0, field=jnp.zeros(2), band=0, **{name: value})


# ---------------------------------------------------------------------------------------------
# Hermiticity along the path


def test_non_hermitian_along_the_path_stops_the_run():
    """gamma = 0.3 beyond kx = 0 (the start, kx = -0.5, is Hermitian): with dk/dt = 0.5 the run
    must stop once kx > 0, i.e. at t in (1, 1 + one step], flagged for that member only (vmap,
    throw=False); a Hermitian member runs to t1 = 2 and conserves |chi| = 1."""
    trajectory = _full_batch(_batch(gamma=0.3))
    np.testing.assert_array_equal(trajectory.success, [True, False])
    np.testing.assert_array_equal(trajectory.non_hermitian, [False, True])
    assert float(trajectory.non_hermiticity[0]) == 0.0
    assert float(trajectory.non_hermiticity[1]) > 1e-10
    assert 1.0 < float(trajectory.t_stop[1]) < 2.0 and float(trajectory.t_stop[0]) == 2.0
    np.testing.assert_allclose(np.linalg.norm(trajectory.chi[0], axis=-1), 1.0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# the watched band's state must not jump between accepted steps


def _confined(method, mass, *, k0=-1.0, e=0.05, t1=40.0, gamma=0.0, throw=True, tolerance=None):
    """A sweep kx: k0 -> k0 + e t1 at ky = 0 of the lower band (charge -1: E along -x)."""
    tolerances = {} if tolerance is None else {"rtol": tolerance, "atol": tolerance}
    return sj.evolve(
        _model(mass, gamma),
        None,
        jnp.array([k0, 0.0]),
        t1=t1,
        field=jnp.array([-e, 0.0]),
        method=method,
        band=0,
        throw=throw,
        **tolerances,
    )


@pytest.mark.parametrize("method", ["abelian", "nonabelian"])
def test_step_over_an_exact_band_touching_is_flagged(method):
    """Massless cone, kx from -1 to 1: the full-band state stays on its branch and ends 100 % in
    band 1 (Landau-Zener P = exp(0) = 1), so a confined run must not report success. It stops at
    kx = 0: the band's velocity kinks there, the steps shrink towards the touching and the gap
    check stops the run (gap <= 1e-8 x |H(x0, k0)|: the local energies all vanish at the apex),
    or a step crosses it and the state jump is caught; which of the two comes first depends on
    the last bits of the arithmetic (FMA contraction), both are flagged and named by throw=True.
    At rtol = atol = 1e-3 the Abelian run steps over the touching (a step of ~0.1 in kx): the
    projector overlap between the two accepted steps is ~0 (the bands swap) and state_jumped
    names it. The gapped cone (Delta = 0.5) on the same path is not flagged and gives the
    closed-form displacement to 1e-9."""
    flagged = _confined(method, 0.0, throw=False)
    assert not bool(flagged.success) and bool(flagged.gap_closed)
    assert bool(flagged.state_jumped) or float(flagged.gap_at_stop) <= 1e-8 * np.sqrt(2.0)
    assert abs(float(flagged.k[-1, 0])) < 0.5  # stopped at the touching, not at kx = 1
    closed = r"gap of manifold \(0,\) to the remote bands closed.*gap = "
    jumped = r"jumped between two accepted steps.*overlap = "
    with pytest.raises(ValueError, match=rf"{jumped}|{closed}"):
        _confined(method, 0.0)
    if method == "abelian":
        stepped_over = _confined(method, 0.0, throw=False, tolerance=1e-3)
        assert bool(stepped_over.state_jumped) and bool(stepped_over.gap_closed)
        assert float(stepped_over.smallest_overlap) < 0.5
        assert 0.0 < float(stepped_over.k[-1, 0]) < 0.5  # one step past the touching
        with pytest.raises(ValueError, match=jumped):
            _confined(method, 0.0, tolerance=1e-3)
    gapped = _confined(method, 0.5)
    assert bool(gapped.success) and not bool(gapped.state_jumped)
    assert float(gapped.smallest_overlap) > 0.9
    expected = 1.0 / (0.5 * np.sqrt(1.0 + 0.25))
    np.testing.assert_allclose(float(gapped.x[-1, 1]), expected, rtol=1e-9)


def test_landau_zener_flag_follows_the_full_band_population():
    """Sweep kx from -10 to 10 at E = 0.5, v = 1. Full band (vmap) against the closed form
    P = exp(-pi Delta^2 / (v E)): Delta = 0.3 gives P = 0.57 (to 2e-2: finite sweep), Delta = 1.6
    P = 1e-7 (leak below 1e-6). The Abelian run of the first is flagged (a Landau-Zener
    transition of order one), of the second not; Delta = 0 (P = 1) is the exact touching above."""
    masses = np.array([0.3, 1.6])
    chi0 = [np.linalg.eigh(np.array([[m, -10.0], [-10.0, -m]]))[1][:, 0] for m in masses]
    sweep = _full_batch(
        {
            **_batch(),
            "mass": jnp.asarray(masses),
            "k0": jnp.array([[-10.0, 0.0]] * 2),
            "t1": jnp.array([40.0, 40.0]),
            "ts": jnp.array([[10.0, 20.0, 40.0]] * 2),
            "chi0": jnp.asarray(np.stack(chi0)),
        }
    )
    assert np.all(np.asarray(sweep.success))
    upper = np.asarray(sweep.populations[:, -1, 1])
    np.testing.assert_allclose(upper[0], np.exp(-np.pi * 0.09 / 0.5), atol=2e-2)
    assert upper[1] < 1e-6
    diabatic = _confined("abelian", 0.3, k0=-10.0, e=0.5, throw=False)
    assert not bool(diabatic.success) and bool(diabatic.gap_closed)
    adiabatic = _confined("abelian", 1.6, k0=-10.0, e=0.5, throw=False)
    assert bool(adiabatic.success) and not bool(adiabatic.gap_closed)
    assert float(adiabatic.smallest_overlap) > 0.9
