"""Scheduling many submissions: the local asyncio runner and the Dask runner."""
