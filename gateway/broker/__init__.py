"""Fan-out seam between processes: memory (one process) now, Redis later."""
