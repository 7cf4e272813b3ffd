"""nntpd-support: an NNTP server for product-support communities."""

__version__ = "0.1.0"
