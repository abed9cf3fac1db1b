"""The data model, MIDI I/O, quantization and melody extraction."""
