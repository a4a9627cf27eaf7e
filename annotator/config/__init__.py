"""Settings building blocks: typed environment readers and one module per integration."""
