"""Quality and speed measurements of docworker on the shared corpus, beside its peers."""
