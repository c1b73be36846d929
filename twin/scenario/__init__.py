"""Scenario files: the TOML schema, validated into frozen dataclasses, one module per table
(``loader`` for the file and its root tables, ``field``, ``network``, ``mdc``, ``faults``;
``schema`` is the typed table reader they share)."""
