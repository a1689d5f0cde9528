"""Running the command line in-process in tests: exit status and output of ``connectome ARGV``."""

from connectome_lib.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``connectome ARGV``; return (exit status, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
