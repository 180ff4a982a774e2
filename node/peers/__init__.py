"""The node side of federation: the ``/_federation/v1/...`` endpoints peers call, their versioned payloads, and
the staff look-up that fans out to every peer (``/api/v1/network/borrowers/<key>/where``). See docs/federation.md."""
