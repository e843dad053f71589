"""Jobs: the store, the executors, the queue front and events."""
