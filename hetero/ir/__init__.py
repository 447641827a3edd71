"""The IR: fixed-point types, quantizers, the typed dataflow graph and the user's config (numpy only)."""
