"""Embeddings of the Sans-I/O codecs in I/O frameworks.

Each module imports its framework (asyncio here; uvicorn, starlette and
redis-py behind extras); the protocol packages import none of them.
"""
