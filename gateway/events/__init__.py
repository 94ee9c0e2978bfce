"""Domain events to Bayeux messages, and the referenceId correlation registry."""
