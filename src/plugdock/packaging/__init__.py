"""The ``.difypkg`` format: building, reading safely, checksums, identifiers and signatures."""
