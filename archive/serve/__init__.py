"""`archive serve`: a read-only web app over a store and its catalog, for investigators:
browse, verify, replay, compare and search captures in a browser."""
