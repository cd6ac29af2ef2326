"""Adapters for the tools people already run (httpx auth, Azure Databricks), on top of the drivers."""
