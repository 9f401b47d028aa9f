"""mailgw: a mail compliance gateway for Vietnamese government mail domains."""

__version__ = "0.1.0"
