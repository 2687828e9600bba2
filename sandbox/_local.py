"""The local backend: bubblewrap + cgroups + seccomp + a dedicated uid, one fresh sandbox per run."""

from __future__ import annotations

import threading

from sandbox import _early, _host
from sandbox._errors import SandboxError
from sandbox._models import ExecRequest, ExecResult, Isolation
from sandbox._verdict import to_result
from sandbox._worker import LocalWorker

_teardowns: list[threading.Thread] = []
_teardowns_lock = threading.Lock()


def _tear_down_later(worker: LocalWorker) -> None:
    """The job's processes are already dead when the answer arrives; waiting for bwrap to exit and
    its namespaces to go away only delays the caller. Non-daemon, so the interpreter waits at exit."""
    thread = threading.Thread(target=worker.close, name="sandbox-teardown")
    with _teardowns_lock:
        _teardowns[:] = [t for t in _teardowns if t.is_alive()]
        _teardowns.append(thread)
    thread.start()


def wait_for_teardowns() -> None:
    """Blocks until every finished cold sandbox has been torn down (workers reaped, cgroups gone)."""
    with _teardowns_lock:
        pending = list(_teardowns)
    for thread in pending:
        thread.join()


class LocalBackend:
    """Cold runs: every execute() starts a sandbox, runs the request in it and tears it down.

    ``use_bwrap``/``use_cgroups`` exist to exercise the partial-isolation fallback on a host that
    has both; leave them on otherwise.
    """

    def __init__(self, *, use_bwrap: bool = True, use_cgroups: bool = True, python: str | None = None) -> None:
        self.support = _host.probe(use_bwrap, use_cgroups, python)

    @property
    def isolation(self) -> Isolation:
        return self.support.isolation  # type: ignore[return-value]

    def new_worker(self, workdir_mb: int, tree: str | None = None, one_job: bool = False) -> LocalWorker:
        return LocalWorker(self.support, workdir_mb, tree, one_job)

    def result(self, request: ExecRequest, evidence: dict[str, object]) -> ExecResult:
        if not evidence["setup_ok"]:
            detail = bytes(evidence["stderr"]).decode(errors="replace").strip()  # type: ignore[call-overload]
            raise SandboxError(f"the sandbox could not prepare the run: {detail}")
        return to_result(evidence, request.limits, self.isolation,
                         memory_by_cgroup=self.support.cgroup_bases is not None)

    def execute(self, request: ExecRequest) -> ExecResult:
        workdir_mb = request.limits.file_size_mb
        worker = _early.take(self.support, workdir_mb, request.tree) or self.new_worker(workdir_mb, request.tree,
                                                                                         one_job=True)
        try:
            evidence = worker.execute(request)
        except BaseException:
            worker.close()
            raise
        _tear_down_later(worker)
        return self.result(request, evidence)

    def close(self) -> None:
        """Nothing outlives execute()."""
