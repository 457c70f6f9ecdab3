"""The inference benchmark's arithmetic bound: multiply-adds counted from a model's
layers, and the images/s this machine's matrix-multiply rate allows."""

from __future__ import annotations

import keras
import pytest

from tests.conftest import benchmark_script

BENCHMARK = benchmark_script("inference_benchmark")


def tiny_model() -> keras.Sequential:
    block = keras.Sequential(
        [keras.layers.Conv2D(8, 1, use_bias=False), keras.layers.ReLU()], name="block"
    )
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.MaxPooling2D(),
            block,
            keras.layers.BatchNormalization(),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(2),
        ]
    )


def test_multiply_adds_count_every_kernel_once_per_output_position():
    # By hand: 8x8 positions x 3x3x3x4, then 4x4 positions x 1x1x4x8, then 8x2.
    expected = 8 * 8 * 3 * 3 * 3 * 4 + 4 * 4 * 4 * 8 + 8 * 2
    assert BENCHMARK.multiply_adds(tiny_model()) == expected


def test_the_bound_is_the_matrix_multiply_rate_over_an_image_s_arithmetic():
    model = tiny_model()
    gflop = 2 * BENCHMARK.multiply_adds(model) / 1e9
    bound = BENCHMARK.compute_bound(model, {"engine": 50_000.0}, 100.0)
    assert bound["gemm_bound_img_s"] == pytest.approx(100.0 / gflop, rel=1e-6)
    assert bound["share_of_bound"]["engine"] == pytest.approx(
        50_000.0 / bound["gemm_bound_img_s"], abs=1e-3
    )


def test_the_matrix_multiply_rate_is_measured():
    assert BENCHMARK.gemm_gflop_s(size=128, repeats=2) > 0


def test_the_rate_under_an_isa_cap_uses_openblas_kernel_of_that_width():
    # What --isa AVX2 measures on an AVX512 machine: OpenBLAS's Haswell kernel.
    assert BENCHMARK.gemm_gflop_s(size=128, repeats=2, isa="AVX2") > 0


def test_an_isa_the_bound_cannot_emulate_is_a_clear_error():
    with pytest.raises(ValueError, match=r"isa: .*'AVX2'.*got 'AVX10'"):
        BENCHMARK.gemm_gflop_s(size=128, repeats=2, isa="AVX10")
