"""Allow ``python -m convfilter``."""

from convfilter.cli import cli

if __name__ == "__main__":
    cli(prog_name="convfilter")
