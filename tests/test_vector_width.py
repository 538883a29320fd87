"""Numba's vector width: 512-bit vectors asked for only where the CPU has them and nobody chose."""

from __future__ import annotations

from ketadur.engine.vector_width import OPT_OUT, prefer_wide_vectors

AVX512 = {"avx2": True, "avx512f": True, "sse2": True}


def test_wide_vectors_on_an_avx512_cpu_keep_the_host_features():
    environ: dict[str, str] = {}
    assert prefer_wide_vectors(environ, {}, AVX512)
    assert environ["NUMBA_CPU_FEATURES"] == "+avx2,+avx512f,+sse2,-prefer-256-bit"


def test_nothing_changes_without_avx512_or_against_a_choice_made():
    assert not prefer_wide_vectors(environ := {}, {}, {"avx2": True, "avx512f": False})
    assert environ == {}
    for chosen in ({OPT_OUT: "0"}, {"NUMBA_CPU_FEATURES": "+avx2"}, {"NUMBA_CPU_NAME": "generic"}):
        environ = dict(chosen)
        assert not prefer_wide_vectors(environ, {}, AVX512)
        assert environ == chosen


def test_nothing_changes_once_numba_is_imported():
    environ: dict[str, str] = {}
    assert not prefer_wide_vectors(environ, {"numba": object()}, AVX512)
    assert environ == {}
