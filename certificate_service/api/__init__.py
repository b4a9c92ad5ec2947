"""HTTP layer: routers and the dependencies they declare."""
