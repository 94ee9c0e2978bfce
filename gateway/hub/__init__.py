"""Sessions held by this process, their queues and the subscription index."""
