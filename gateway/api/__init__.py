"""REST edges, one module per dialect; they parse, call a service and map errors to the dialect."""
