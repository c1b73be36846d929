"""Fetch stage: an upload's bytes to a parsed tree, hardened against hostile XML
(`pipeline.fetch.parse`), within `pipeline.fetch.limits.Limits`, and, with a keyring,
authenticated per meter (`pipeline.fetch.auth`). Every stage rejects with
`pipeline.fetch.rejection.RejectedUpload`."""
