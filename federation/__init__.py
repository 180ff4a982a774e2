"""Federation between district nodes: node identity, signed requests, the peer directory and the fan-out client.

- ``keys``: the node's Ed25519 key pair (private half in the secrets directory, public half pinned by peers).
- ``peers``: the peer directory — ``district_configs/`` merged with the ring's ``node_directory`` table, cached.
- ``signing``: the one canonical request signature (RFC 9421 style) and its verification, with stable error codes.
- ``backoff``: per-peer retry state (exponential backoff with jitter, shared through Redis).
- ``fanout``: one bounded, deadline-limited fan-out to peers; the result names what is missing (``partial``).
- ``auth``: the DRF authentication class for endpoints that only peers call.

This package knows nothing about loans or borrowers: node apps register the concrete ``/_federation/v1/...``
endpoints and their versioned payloads. See docs/federation.md.
"""
