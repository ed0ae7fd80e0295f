"""The WACZ format in both directions: the canonical zip layout and writer, the strict
reader, the member names and a capture's self-description. Imports nothing above it."""
