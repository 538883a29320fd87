"""Treatment protocols: the YAML language, its compiler, adaptive execution and event datasets."""
