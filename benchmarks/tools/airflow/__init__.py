"""Airflow 3 behind orchbench: local services, REST client, adapter, CLI.

Runs in the core environment; reaches Airflow only through its programs and its HTTP API.
"""
