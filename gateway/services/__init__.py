"""Domain operations: no HTTP, no Bayeux; they raise domain errors and emit domain events."""
