"""The ESPI (Green Button) format the pipeline reads: namespaces, code tables, the
ReadingType that identifies a series, the upload identity and local time decoding. The
meter upload format built on them is written down in ``docs/upload-format.md``."""
