"""One adapter per serving platform, behind the protocol in `backends.base`."""
