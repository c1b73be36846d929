"""Store stage: the SQLite schema of every table (`pipeline.store.schema`), the connection
and its units of work (`pipeline.store.database`), and the repositories by concern that
`pipeline.store.store.Store` gathers: readings, alerts, sites, local times. Nothing outside
this package touches the connection."""
