"""Local services the tools need: one process supervisor and an embedded PostgreSQL."""
