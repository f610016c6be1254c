"""What the tests and the benchmarks share: apps and rows to test against (``factories``), signed-in
editors (``auth_helpers``), hostile inputs (``hostile``), geotagged photos (``geotagged``), generated
training images (``ml_samples``), a live stack of web, broker, database and worker processes
(``live_stack``) and the faults injected into it (``faults``). Importable from the repository root."""
