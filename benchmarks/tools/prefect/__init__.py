"""Prefect as an orchbench tool: its adapter, services, client and CLI."""
