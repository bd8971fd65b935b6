import pyfacerig


def test_compiled_core_is_importable():
    from pyfacerig import _core
    assert "geometry" in _core.__doc__
