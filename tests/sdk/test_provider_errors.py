import logging

import pytest

import errdiscount_sdk as ed
from errdiscount_sdk import ConfigurationError, ErrorCategory, ProviderError, Severity
from errdiscount_sdk.asgi import ErrorMap


def test_defaults_and_members() -> None:
    error = ProviderError("PAY_001", "Insufficient balance.", suggestion="Top up.")
    assert isinstance(error, ed.ErrDiscountError)
    assert (error.status, error.category, error.severity) == (
        400,
        ErrorCategory.BUSINESS,
        Severity.MINOR,
    )
    assert error.compensable is None and error.transient is False
    assert error.messages == {} and error.suggestions == {}
    assert "PAY_001" in str(error) and "PAY_001" in repr(error)


@pytest.mark.parametrize(
    ("status", "transient"), [(503, True), (429, True), (500, False), (402, False)]
)
def test_transient_follows_the_status_unless_told(status: int, transient: bool) -> None:
    assert ProviderError("X", "m", status=status).transient is transient
    assert (
        ProviderError("X", "m", status=status, transient=not transient).transient is not transient
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_code": ""},
        {"error_code": "has space"},
        {"error_code": "x" * 65},
        {"message": ""},
        {"message": "x" * 501},
        {"message": "bell\x07"},
        {"status": 200},
        {"status": 600},
        {"status": True},
        {"category": "weather"},
        {"severity": "apocalyptic"},
        {"compensable": "yes"},
        {"messages": {"not a tag!": "x"}},
        {"messages": {"en": ""}},
        {"messages": {f"x{i}": "t" for i in range(20)}},
        {"suggestions": {"zh-CN": "x" * 501}},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"error_code": "PAY_001", "message": "m"}
    values.update(kwargs)
    with pytest.raises(ConfigurationError):
        ProviderError(**values)  # type: ignore[arg-type]


def test_error_map_uses_the_most_specific_base_class() -> None:
    class Base(Exception):
        pass

    class Child(Base):
        pass

    base = ProviderError("BASE", "base")
    errors = ErrorMap({Base: base, Child: lambda exc: ProviderError("CHILD", str(exc))})
    assert errors.resolve(Base()) is base
    child = errors.resolve(Child("from the child"))
    assert child is not None and child.error_code == "CHILD" and child.message == "from the child"
    assert errors.resolve(KeyError()) is None
    own = ProviderError("OWN", "raised directly")
    assert errors.resolve(own) is own
    assert len(errors) == 2


def test_a_broken_mapper_leaves_the_exception_unhandled(caplog: pytest.LogCaptureFixture) -> None:
    def broken(exc: BaseException) -> ProviderError:
        raise RuntimeError("bug in the mapping")

    errors = ErrorMap({ValueError: broken, KeyError: lambda exc: "not an error"})  # type: ignore[dict-item]
    with caplog.at_level(logging.WARNING, logger="errdiscount_sdk.provider"):
        assert errors.resolve(ValueError()) is None
        assert errors.resolve(KeyError()) is None
    assert "ValueError" in caplog.text and "KeyError" in caplog.text


@pytest.mark.parametrize("mappings", [{"ValueError": ProviderError("X", "m")}, {ValueError: 42}])
def test_error_map_refuses_bad_entries(mappings: dict[object, object]) -> None:
    with pytest.raises(ConfigurationError):
        ErrorMap(mappings)  # type: ignore[arg-type]
