"""The sandbox's one error type, in a module of its own: the code that starts a sandbox imports it without pydantic
(see sandbox/_early.py)."""


class SandboxError(RuntimeError):
    """The sandbox itself failed (infrastructure), as opposed to the program failing (data)."""
