"""The archive domain: how events change a person's archive, disclosure windows, the hash chain.

Pure functions with no I/O, shared by the stream workers (which build archives) and the
connectors (which verify the chain on the platform side).
"""
