from errdiscount_sdk._cli import main


def test_demo_exits_zero(capsys) -> None:
    assert main(["demo"]) == 0
    assert "errdiscount" in capsys.readouterr().out
