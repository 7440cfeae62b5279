"""Allow ``python -m convfilter``."""

from convfilter.server.client import main

if __name__ == "__main__":
    main()
