"""Bad input raises an error whose message names the problem (issue 2, item 5)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models

K = jnp.array([0.2, -0.1])
# eqx.filter_jit raises EquinoxRuntimeError; plain jax.jit / vmap surface it as JaxRuntimeError.
RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)


def _function_model(matrix_of_k, n_bands=2):
    return models.FunctionModel(lambda p, x, k: matrix_of_k(k), None, dim=2, n_bands=n_bands)


def test_non_hermitian_model_eager_and_jitted():
    model = _function_model(lambda k: jnp.array([[k[0], 1.0], [0.0, -k[0]]]))
    with pytest.raises(ValueError, match="not Hermitian"):
        sj.berry_curvature(model, None, K)
    # a concrete model at traced points: checked at every point inside the compiled call (a
    # callback error seen at block_until_ready may reach Python as ValueError)
    with pytest.raises((ValueError, *RUNTIME_ERRORS), match="not Hermitian"):
        jax.jit(sj.berry_curvature)(model, None, K).block_until_ready()
    with pytest.raises((ValueError, *RUNTIME_ERRORS), match="not Hermitian"):
        batched = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))
        batched(model, None, jnp.stack([K, K])).block_until_ready()
    # traced parameters: checked per point inside the compiled call
    traced = jax.jit(
        lambda p: sj.berry_curvature(
            models.FunctionModel(
                lambda q, x, k: jnp.array([[k[0], q], [0.0, -k[0]]]), p, dim=2, n_bands=2
            ),
            None,
            K,
        )
    )
    with pytest.raises(RUNTIME_ERRORS, match="not Hermitian"):
        traced(1.0)


def test_wrong_output_shape():
    model = _function_model(lambda k: jnp.eye(3) * k[0], n_bands=2)
    with pytest.raises(ValueError, match=r"n_bands.*\(2, 2\).*\(3, 3\)"):
        sj.berry_curvature(model, None, K)


def test_wrong_point_shape_names_argument():
    model = models.QWZ(1.0)
    with pytest.raises(ValueError, match="k must have shape"):
        sj.berry_curvature(model, None, jnp.zeros(3))
    with pytest.raises(ValueError, match="x must have shape"):
        sj.band_velocity(model, jnp.zeros(1), K)


@pytest.mark.parametrize(
    "manifold, message",
    [
        ([], "empty"),
        ([0, 7], "out of range"),
        ([1, 1], "repeats"),
        ([-1], "out of range"),
        ([0.5], "integer"),
    ],
)
def test_bad_manifold(manifold, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sj.nonabelian_curvature(
            models.KaneMele(1.0, 0.06, rashba=0.05, mass=0.1), None, K, manifold
        )


def test_manifold_without_remote_bands():
    with pytest.raises(ValueError, match="no remote bands"):
        sj.nonabelian_curvature(models.QWZ(1.0), None, K, [0, 1])


def test_partition_overlap_and_missing_bands():
    assert sj.check_partition([[1, 0], [2]], 3) == ((0, 1), (2,))
    assert sj.check_partition(None, 2) == ((0,), (1,))
    with pytest.raises(ValueError, match=r"manifolds\[1\] overlaps manifolds\[0\]: band 1"):
        sj.check_partition([[0, 1], [1, 2]], 3)
    with pytest.raises(ValueError, match=r"miss bands \[3\]"):
        sj.check_partition([[0, 1], [2]], 4)


def test_gap_closing_reports_the_gap():
    """Kane-Mele without Rashba is doubly degenerate: band 0 alone has zero gap to band 1."""
    model = models.KaneMele(1.0, 0.06)
    with pytest.raises(
        ValueError, match=r"manifold \(0,\): its gap to the remote bands closes.*gap = \d\.\d+e"
    ):
        sj.nonabelian_curvature(model, None, K, [0])
    with pytest.raises(RUNTIME_ERRORS, match="gap to the remote bands closes"):
        jax.jit(sj.nonabelian_curvature, static_argnums=3)(model, None, K, (0,))
    with pytest.raises(ValueError, match="gap to the remote bands closes on the 8x8 grid"):
        sj.chern_number(model, [0], 8)
    # the massless Dirac point closes the gap of a Dirac band
    with pytest.raises(ValueError, match=r"gap = 0\.000e\+00"):
        sj.projector_derivative(models.MassiveDirac(1.0, 0.0), None, jnp.zeros(2), [0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_parameter_is_named(bad):
    with pytest.raises(ValueError, match="model parameter 'mass' is not finite"):
        sj.berry_curvature(models.MassiveDirac(1.0, bad), None, K)
    with pytest.raises(ValueError, match="model parameter 't2' is not finite"):
        sj.chern_number(models.Haldane(1.0, bad, 0.3, 0.1), [0], 8)
    with pytest.raises(ValueError, match=r"model parameter 'mass.amplitude' is not finite"):
        sj.berry_curvature(models.MassiveDirac(1.0, sj.textures.DomainWall(bad, 1.0)), None, K)


def test_non_finite_traced_parameter_is_caught_at_run_time():
    f = jax.jit(lambda mass: sj.berry_curvature(models.MassiveDirac(1.0, mass), None, K))
    with pytest.raises(RUNTIME_ERRORS, match="not finite"):
        f(jnp.nan)


def test_finite_hamiltonian_with_non_finite_derivative_is_caught():
    # H = sqrt|k_x| sigma_z is finite at k_x = 0, its k-derivative is not; likewise sqrt|x_x|.
    cusp_k = _function_model(
        lambda k: jnp.sqrt(jnp.abs(k[0])) * jnp.diag(jnp.array([1.0, -1.0])) + 0.3 * k[1]
    )
    at_cusp = jnp.array([0.0, 0.2])
    with pytest.raises(ValueError, match="or its derivative is not finite"):
        sj.berry_curvature(cusp_k, None, at_cusp)
    batched = jax.jit(jax.vmap(lambda k: sj.berry_curvature(cusp_k, None, k)[0, 2, 3]))
    assert np.all(np.isfinite(batched(jnp.stack([K, K]))))
    # a callback error seen at block_until_ready reaches Python as ValueError("INTERNAL: CpuCallback ...")
    with pytest.raises((ValueError, *RUNTIME_ERRORS), match="or its derivative is not finite"):
        batched(jnp.stack([K, at_cusp])).block_until_ready()
    cusp_x = models.FunctionModel(
        lambda p, x, k: (
            jnp.sqrt(jnp.abs(x[0])) * jnp.diag(jnp.array([1.0, -1.0])) + k[0] * jnp.eye(2)
        ),
        None,
        2,
        2,
    )
    velocity = jax.jit(lambda x: sj.band_velocity(cusp_x, x, K))
    assert np.all(np.isfinite(velocity(jnp.array([0.5, 0.0]))))
    with pytest.raises((ValueError, *RUNTIME_ERRORS), match="or its derivative is not finite"):
        velocity(jnp.zeros(2)).block_until_ready()


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="valley must be"):
        models.MassiveDirac(1.0, 0.1, valley=2)
    with pytest.raises(ValueError, match="chern_number needs a lattice model"):
        sj.chern_number(models.MassiveDirac(1.0, 0.1), [0], 8)
    with pytest.raises(ValueError, match="n_k must be an integer"):
        sj.chern_number(models.QWZ(1.0), [0], 1)
    with pytest.raises(ValueError, match="method must be"):
        sj.chern_number(models.QWZ(1.0), [0], 8, method="wilson")
    with pytest.raises(TypeError, match="model must define 'dim'"):
        sj.berry_curvature(lambda x, k: jnp.eye(2), None, K)
