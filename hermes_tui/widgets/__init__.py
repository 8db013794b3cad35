"""One widget per file; import them from their modules."""
