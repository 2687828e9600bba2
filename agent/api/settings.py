"""The server's configuration, typed and read from SEMCODER_* environment variables (or flags of `semcoder serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.persistence import DB_HELP


class ApiSettings(BaseSettings):
    """Every field can be set as SEMCODER_<FIELD>, e.g. SEMCODER_API_TOKEN, SEMCODER_DB_URL."""

    model_config = SettingsConfigDict(env_prefix="SEMCODER_", extra="ignore", protected_namespaces=())

    api_token: SecretStr | None = Field(
        None, description="Bearer token every /v1 route requires. Without one the server only binds loopback "
        "addresses and accepts any caller.")
    db_url: str | None = Field(None, description=DB_HELP)
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Directories a project-level request may name by path (comma-separated "
        "in the environment). Empty: only function-level requests and uploaded archives are accepted.")
    max_concurrent_runs: int = Field(4, ge=1, description="Runs executing at once (per replica); the rest wait in "
                                     "the queue.")
    lease_s: float = Field(15.0, ge=1, le=3600, description="How long a replica holds a run without renewing it "
                           "(it renews every quarter of it): a replica that dies has its runs resumed by another "
                           "within about this long.")
    sandbox_workers: int = Field(2, ge=1, description="Sandbox processes shared by all runs (each runs one "
                                 "candidate's tests at a time).")
    sandbox_backend: str = Field("local", description="Sandbox backend for test runs: 'local' (bubblewrap) or "
                                 "'docker'.")
    max_request_bytes: int = Field(16_000_000, ge=1024, description="Largest request body accepted (413 above).")
    max_archive_bytes: int = Field(8_000_000, ge=1024, description="Largest unpacked size of an uploaded project "
                                   "archive.")
    max_queued_runs: int = Field(1000, ge=1, description="Unfinished runs accepted at once (429 above).")
    reports_dir: Path | None = Field(None, description="A directory of eval report folders (each one `semcoder "
                                     "eval --model URL --out DIR` folder): listed and served read-only under "
                                     "/v1/reports and on the viewer's report pages.")
    max_report_bytes: int = Field(64_000_000, ge=1024, description="Largest report file read (report.json, "
                                  "tasks.jsonl); 413 above.")
    model_url: str | None = Field(None, description="OpenAI-compatible server whose models GET /v1/models lists "
                                  "(e.g. http://vllm:8000/v1; several servers of the same model: comma-separated); "
                                  "the openai backend uses it too.")

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_roots")
    @classmethod
    def _resolve_roots(cls, roots: list[Path]) -> list[Path]:
        return [root.expanduser().resolve() for root in roots]

    @field_validator("reports_dir")
    @classmethod
    def _resolve_reports(cls, root: Path | None) -> Path | None:
        return None if root is None else root.expanduser().resolve()
