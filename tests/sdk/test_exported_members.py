import errdiscount_sdk


def test_all_is_sorted_and_exact() -> None:
    exported = errdiscount_sdk.__all__
    # Classes first, then functions and dunders: the order ruff's RUF022 keeps.
    assert exported == sorted(exported, key=lambda name: (not name[0].isupper(), name))
    public = {
        name
        for name in dir(errdiscount_sdk)
        if not name.startswith("_") and not _is_submodule(name)
    }
    assert public == {name for name in exported if not name.startswith("_")}


def test_exported_members_claim_the_public_module() -> None:
    for name in errdiscount_sdk.__all__:
        member = getattr(errdiscount_sdk, name)
        if hasattr(member, "__module__") and isinstance(member, type):
            assert member.__module__ == "errdiscount_sdk", name


def _is_submodule(name: str) -> bool:
    import types

    return isinstance(getattr(errdiscount_sdk, name), types.ModuleType)
