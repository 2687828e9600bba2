"""What a sandbox's start, and the commands that start one early, need before pydantic is imported (sandbox/_early.py):
the backends' names and Limits' defaults (Limits reads them)."""

BACKENDS = ("local", "docker")
FILE_SIZE_MB = 64  # the largest file a run may write, and the size of its writable working dir
