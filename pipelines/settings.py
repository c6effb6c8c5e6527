"""`emostore.toml`: finding it, validating it against the resources' fields, and defaults.

Search order: `--config`, then `$EMOSTORE_CONFIG`, then `./emostore.toml`; with none of them the
built-in default runs the demo (store `demo/store`, the demo corpora under `demo/corpora`).
Relative paths resolve against the config file's own directory (the working directory for the
built-in default). Unknown sections, keys, encoder roles, backends and backend params, wrong
types, out-of-range or inconsistent values (a negative count, a `min_*` above its `max_*`) and
missing corpus roots or weights are errors on one line that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from assets.resources import (
    EncoderResource,
    FacesResource,
    GalleryResource,
    LabelRulesResource,
    PldaResource,
    Stage2Resource,
    StoreResource,
    TextTrainingResource,
    ThresholdsResource,
    TrainingResource,
    TwoStageResource,
    ZeroShotResource,
)
from assets.partitions import MELD_SPLITS
from corpora import registry
from storage import shards as sharding
from storage import uris

CONFIG_NAME = "emostore.toml"
CONFIG_ENV = "EMOSTORE_CONFIG"

# Corpus names the readers know (MELD and corpora/registry.py's); any other `[corpora.<name>]` is an error.
KNOWN_CORPORA = ("meld", *registry.names())

# The offline defaults: every one of these ships inside an installed package.
DEFAULT_ENCODERS: dict[str, dict[str, Any]] = {
    "asr": {"backend": "faster-whisper", "model": "tiny.en", "params": {"compute_type": "int8"}},
    "speaker": {"backend": "resemblyzer"},
    "text": {"backend": "sentence-transformers", "model": "all-MiniLM-L6-v2"},
    "face_detector": {"backend": "mtcnn"},
    "face_embedder": {"backend": "dlib"},
}

# Roles whose weights no package ships: the resource always exists (so its assets load), and the
# model runs once `path` or `model` is configured; until then its assets write empty tables.
UNCONFIGURED_ENCODERS: dict[str, dict[str, Any]] = {
    "frame_emotion": {"backend": "clip"},
}

DEMO_ROOT = "demo"


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the file and the key."""


class DemoSettings(BaseModel, extra="forbid"):
    """`[demo]`: the generated demo corpus."""

    root: str = Field(default=DEMO_ROOT, description="Folder the demo corpora are written to (under `corpora/`).")
    seed: int = Field(default=0, description="Random seed; the same seed writes byte-identical corpora.")


EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")


class DagsterSettings(BaseModel, extra="forbid"):
    """`[dagster]`: where Dagster keeps its own state, and how runs execute their steps."""

    home: str = Field(default="", description="DAGSTER_HOME; default: `<store>.dagster` beside a local store, `~/.emostore/dagster/<hash>` for a remote one.")
    storage: str = Field(default="", description="The Dagster instance's run, event and schedule storage: `postgresql://user:password@host:5432/db` for several machines; empty: SQLite in DAGSTER_HOME (one machine).")
    executor: str = Field(default="in_process", description="How a run executes its steps: `in_process` (the CLI's own process), `multiprocess` (a process per step on this machine), `celery` (steps as tasks for `emostore worker` processes on any machine), `k8s` (a Kubernetes job per step, `[dagster] k8s`).")
    max_concurrent: int = Field(default=2, ge=1, description="`multiprocess`: steps at a time on this machine.")
    celery_broker: str = Field(default="", description="`celery`: the broker URL, e.g. `redis://host:6379/0`.")
    celery_backend: str = Field(default="", description="`celery`: the result backend URL; default: the broker.")
    k8s: dict[str, Any] = Field(default_factory=dict, description="`k8s`: the config of dagster-k8s's `k8s_job_executor` (job_namespace, image_pull_policy, env_vars, resources, ...).")
    runs_in_flight: int = Field(default=4, ge=1, le=64, description="`celery`, `k8s`: planned runs (shards) submitted at once by `materialize`/`update`; their steps queue for the workers.")
    step_retries: int = Field(default=0, ge=0, le=10, description="Times a failed step (one asset of one shard) is retried, with `retry_delay_seconds` between (Dagster's op RetryPolicy; the event log shows each retry).")
    retry_delay_seconds: float = Field(default=10.0, ge=0.0, description="Seconds before a failed step's retry.")


class CorpusSettings(BaseModel, extra="forbid"):
    """`[corpora.<name>]`: one corpus the user has."""

    root: str = Field(description="The corpus folder as distributed (e.g. MELD.Raw).")


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated configuration."""

    source: str  # the file it came from, or "built-in default"
    base_dir: Path
    store: StoreResource
    corpora: dict[str, str]
    encoders: dict[str, EncoderResource]
    thresholds: ThresholdsResource
    labels: LabelRulesResource
    text_training: TextTrainingResource
    faces: FacesResource
    gallery: GalleryResource
    zero_shot: ZeroShotResource
    training: TrainingResource
    stage2: Stage2Resource
    plda: PldaResource
    two_stage: TwoStageResource
    demo: DemoSettings
    dagster: DagsterSettings

    @property
    def dagster_home(self) -> Path:
        if self.dagster.home:
            return Path(self.dagster.home)
        root = self.store.root
        if uris.is_local(root):
            return Path(uris.local_path(root) + ".dagster")
        digest = hashlib.sha256(root.encode()).hexdigest()[:12]
        return Path.home() / ".emostore" / "dagster" / digest


# Section name -> the model its keys are validated against (corpora and encoders are tables).
SECTIONS: dict[str, type[BaseModel]] = {
    "store": StoreResource,
    "thresholds": ThresholdsResource,
    "labels": LabelRulesResource,
    "text_training": TextTrainingResource,
    "faces": FacesResource,
    "gallery": GalleryResource,
    "zero_shot": ZeroShotResource,
    "training": TrainingResource,
    "stage2": Stage2Resource,
    "plda": PldaResource,
    "two_stage": TwoStageResource,
    "demo": DemoSettings,
    "dagster": DagsterSettings,
}
PATH_KEYS = {"root", "path", "home", "review_file"}  # values resolved against the config file's directory


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file to use, or None for the built-in default."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path.resolve()
    if env := os.environ.get(CONFIG_ENV):
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env} does not name a file")
        return path.resolve()
    local = Path.cwd() / CONFIG_NAME
    return local.resolve() if local.is_file() else None


def load_settings(explicit: str | os.PathLike | None = None) -> Settings:
    path = find_config(explicit)
    if path is None:
        return default_settings(Path.cwd())
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_settings(raw, source=str(path), base_dir=path.parent)


def default_settings(base_dir: Path) -> Settings:
    """The built-in default: the demo store and whichever demo corpora already exist."""
    demo_corpora = base_dir / DEMO_ROOT / "corpora"  # where `emostore demo` writes them
    corpora = {
        name: {"root": str(demo_corpora / name)}
        for name in KNOWN_CORPORA
        if (demo_corpora / name).is_dir()
    }
    raw = {"store": {"root": f"{DEMO_ROOT}/store"}, "corpora": corpora}
    return parse_settings(raw, source="built-in default", base_dir=base_dir)


def parse_settings(raw: dict[str, Any], *, source: str, base_dir: Path) -> Settings:
    where = source
    known = set(SECTIONS) | {"corpora", "encoders"}
    for section in raw:
        if section not in known:
            raise ConfigError(f"{where}: unknown section [{section}]; known: {', '.join(sorted(known))}")
    values = {
        name: _section(model, raw.get(name, {}), f"[{name}]", where, base_dir)
        for name, model in SECTIONS.items()
    }
    for name, value in values.items():
        _check_values(value.model_dump(), type(value).model_fields, f"[{name}]", where)
    try:
        sharding.check_counts(values["store"].shards, MELD_SPLITS)
    except ValueError as exc:
        raise ConfigError(f"{where}: [store] shards: {exc}") from None
    _check_dagster(values["dagster"], where)

    corpora: dict[str, str] = {}
    for name, table in _table(raw, "corpora", where).items():
        if name not in KNOWN_CORPORA:
            raise ConfigError(f"{where}: unknown corpus [corpora.{name}]; known: {', '.join(KNOWN_CORPORA)}")
        corpus = _section(CorpusSettings, table, f"[corpora.{name}]", where, base_dir)
        if uris.is_local(corpus.root) and not Path(corpus.root).is_dir():
            raise ConfigError(f"{where}: [corpora.{name}] root = {corpus.root} does not exist")
        corpora[name] = corpus.root

    encoders: dict[str, EncoderResource] = {}
    user_encoders = _table(raw, "encoders", where)
    roles = set(DEFAULT_ENCODERS) | set(UNCONFIGURED_ENCODERS)
    for role in user_encoders:
        if role not in roles:
            raise ConfigError(f"{where}: unknown encoder role [encoders.{role}]; known: {', '.join(sorted(roles))}")
    for role in sorted(set(DEFAULT_ENCODERS) | set(UNCONFIGURED_ENCODERS) | set(user_encoders)):
        table = user_encoders.get(role, DEFAULT_ENCODERS.get(role) or UNCONFIGURED_ENCODERS.get(role))
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [encoders.{role}] must be a table")
        if "backend" not in table and role in DEFAULT_ENCODERS:
            # A section that names no backend adjusts the default one (e.g. only `model = "base"`).
            table = {**DEFAULT_ENCODERS[role], **table}
        elif "backend" not in table and role in UNCONFIGURED_ENCODERS:
            table = {**UNCONFIGURED_ENCODERS[role], **table}
        if "role" in table:
            raise ConfigError(f"{where}: [encoders.{role}] role: the role is the section's name")
        encoder = _section(EncoderResource, {**table, "role": role}, f"[encoders.{role}]", where, base_dir)
        if encoder.path and uris.is_local(encoder.path) and not Path(encoder.path).exists():
            raise ConfigError(f"{where}: [encoders.{role}] path = {encoder.path} does not exist")
        _check_backend(encoder, where)
        encoders[role] = encoder

    return Settings(
        source=source,
        base_dir=base_dir,
        corpora=corpora,
        encoders=encoders,
        **values,
    )


def _check_dagster(dagster: DagsterSettings, where: str) -> None:
    if dagster.executor not in EXECUTORS:
        raise ConfigError(f"{where}: [dagster] executor = {dagster.executor!r}; known: {', '.join(EXECUTORS)}")
    if dagster.executor == "celery" and not dagster.celery_broker:
        raise ConfigError(f"{where}: [dagster] executor = \"celery\" needs celery_broker (e.g. redis://host:6379/0)")
    if dagster.storage and not dagster.storage.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{where}: [dagster] storage = {dagster.storage!r}: a postgresql:// URL, or empty for SQLite")


def _table(raw: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return table


def _section(model: type[BaseModel], table: Any, name: str, where: str, base_dir: Path):
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {name} must be a table")
    fields = model.model_fields
    for key in table:
        if key not in fields:
            raise ConfigError(f"{where}: {name} unknown key {key!r}; known: {', '.join(fields)}")
    resolved = {
        key: uris.normalize(value, str(base_dir)) if key in PATH_KEYS and isinstance(value, str) and value else value
        for key, value in table.items()
    }
    try:
        return model(**resolved)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "?"
        raise ConfigError(f"{where}: {name} {key}: {error['msg']} (got {error.get('input')!r})") from None


def _check_backend(encoder: EncoderResource, where: str) -> None:
    """The backend is one the role has, and its params are the ones that backend declares
    (`PARAMS` in the role's module under models/encoders), of the right types and in range."""
    from models.encoders import backend_params

    name = f"[encoders.{encoder.role}]"
    backends = backend_params(encoder.role)
    if backends is None:
        return
    if encoder.backend not in backends:
        raise ConfigError(f"{where}: {name} backend: unknown backend {encoder.backend!r}; known: {', '.join(backends)}")
    options = backends[encoder.backend]
    fields = {f.name: f for f in dataclasses.fields(options)}
    for key in encoder.params:
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ConfigError(f"{where}: {name} params: unknown key {key!r} for backend {encoder.backend!r}; known: {known}")
    try:
        pydantic.TypeAdapter(options).validate_python(dict(encoder.params))
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "?"
        raise ConfigError(f"{where}: {name} params.{key}: {error['msg']} (got {error.get('input')!r})") from None
    defaults = {f.name: f.default for f in fields.values() if f.default is not dataclasses.MISSING}
    _check_values({**defaults, **encoder.params}, {}, f"{name} params", where, defaults, joiner=".")
    if hasattr(options, "from_params"):
        try:
            options.from_params(dict(encoder.params))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {name} params: {exc}") from None


def _lower_bound(field: Any) -> bool:
    return any(hasattr(m, "ge") or hasattr(m, "gt") for m in getattr(field, "metadata", ()))


def _check_values(values: dict[str, Any], fields: dict[str, Any], name: str, where: str,
                  defaults: dict[str, Any] | None = None, joiner: str = " ") -> None:
    """Range and consistency rules shared by every section and every backend's params: a number
    whose default is not negative (and that declares no bound of its own) must not be negative, a
    `*_size` must be positive, and `min_<x>` must not be above `max_<x>`."""
    if defaults is None:
        defaults = {k: f.get_default(call_default_factory=True) for k, f in fields.items() if not f.is_required()}

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for key, value in values.items():
        default = defaults.get(key)
        if not number(value) or not number(default) or (key in fields and _lower_bound(fields[key])):
            continue
        if key.endswith("_size") and default > 0 and value <= 0:
            raise ConfigError(f"{where}: {name}{joiner}{key}: must be greater than 0 (got {value!r})")
        if default >= 0 and value < 0:
            raise ConfigError(f"{where}: {name}{joiner}{key}: must be at least 0 (got {value!r})")
    for key, low in values.items():
        high_key = "max_" + key[4:] if key.startswith("min_") else None
        high = values.get(high_key) if high_key else None
        if number(low) and number(high) and low > high:
            raise ConfigError(f"{where}: {name} {key} = {low!r} is above {high_key} = {high!r}")


def documented_keys() -> list[tuple[str, str, str, str]]:
    """(section, key, default, description) for every key, for the README and `emostore config`."""
    rows = []
    for section, model in {**SECTIONS, "corpora.<name>": CorpusSettings, "encoders.<role>": EncoderResource}.items():
        for key, field in model.model_fields.items():
            if key == "role":
                continue
            default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
            rows.append((section, key, default, field.description or ""))
    return rows
