"""What every CLI test asks of a refused command: exit status 2 and one line on stderr, with no
traceback, naming the problem."""

from __future__ import annotations

from advforge.cli import main


def cli_fails(argv: list[str], capsys, *, mentions: str) -> str:
    """Run the CLI on ``argv``, check it is refused as above, and return the error line.

    ``mentions`` must appear in the line, ignoring case.
    """
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert mentions.lower() in err.lower(), err
    return err
