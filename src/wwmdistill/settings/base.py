"""What every settings block shares: strict types, one validation path, one error format.

A settings block is a frozen pydantic model. The same model validates the config at DAG build
(wwmdistill.settings.config), emits the JSON schema Snakemake fills defaults from, and is the
object the library reads, so a default or a range is written once.

Errors name the key path: `config masking.max_seq_len: input should be greater than or equal to
8, got 4`. Integers are strict (`corpus.shards: 2.0` is refused: `range(2.0)` would fail deep in a
job), and a number written as an integer stays an integer, because settings are fingerprinted
and written into artifacts' metadata, where `2` and `2.0` differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    model_validator,
)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

# wwmdistill.download's limits on what one archive may expand to.
DEFAULT_MAX_EXTRACT_BYTES = 64 << 30
DEFAULT_MAX_EXTRACT_MEMBERS = 1_000_000
MAX_EXTRACT_BYTES_HELP = (
    f"refuse a downloaded archive whose members expand past this many bytes (default "
    f"{DEFAULT_MAX_EXTRACT_BYTES}, {DEFAULT_MAX_EXTRACT_BYTES >> 30} GiB), counted from its "
    "headers and again while writing"
)
MAX_EXTRACT_MEMBERS_HELP = (
    f"refuse a downloaded archive with more members than this (default "
    f"{DEFAULT_MAX_EXTRACT_MEMBERS})"
)


class ConfigError(ValueError):
    """A config value refused, named by its key path (`config a.b.c: ...`)."""


class KeyProblem(ValueError):
    """Raised by a model validator to name the key at fault inside its block."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _keep_int(value: Any, handler: Any) -> Any:
    checked = handler(value)
    return value if type(value) is int else checked


# Num, Int and Seq are called in annotations: `p: Num(ge=0, le=1) = 0.4`.
def Num(**constraints: Any) -> Any:
    """A float that accepts an integer and keeps it one (see the module docstring)."""
    return Annotated[float, Field(**constraints), WrapValidator(_keep_int)]


def Int(**constraints: Any) -> Any:
    """A strict integer (a float is refused, even 2.0)."""
    return Annotated[int, Field(**constraints)]


def _tuple_of_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def Seq(item: Any, **constraints: Any) -> Any:
    """A YAML list, held as a tuple (settings are frozen)."""
    return Annotated[tuple[item, ...], Field(**constraints), BeforeValidator(_tuple_of_list)]


def no_default(schema: dict[str, Any]) -> None:
    """Field json_schema_extra: keep the code-side default out of the JSON schema.

    Snakemake fills every schema default into the config, and the rules pass blocks as params:
    a new default would rerun every user's jobs, so a key added later stays unfilled.
    """
    schema.pop("default", None)


B = TypeVar("B", bound="Block")


class Block(BaseModel):
    """A config block: unknown keys refused, integers strict, frozen once built."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    # Where the block sits in the config when from_config is called without `where`.
    where: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # One error naming every unknown key and the keys the block has, for typos.
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown key(s) {unknown}; expected some of {sorted(cls.model_fields)}"
                )
        return data

    @classmethod
    def from_config(cls: type[B], block: Mapping[str, Any] | None, where: str | None = None) -> B:
        """The block `block` (None: all defaults), validated; errors name `where`."""
        return parse(cls, {} if block is None else block, cls.where if where is None else where)

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values in field order (what fingerprints and metadata record)."""
        return self.model_dump()


def parse(model: type[B], data: Any, where: str = "") -> B:
    """`model` validated from `data`; a ConfigError naming each bad key under `where`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_errors(error, where)) from None


def format_errors(error: ValidationError, where: str = "") -> str:
    """Every error of `error` as `config <key path>: <what is wrong>`, one a line."""
    lines = []
    for item in error.errors(include_url=False):
        path = [where] if where else []
        # A bad mapping key is located at <key>.[key]; the key is the path.
        path += [str(part) for part in item["loc"] if part != "[key]"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, KeyProblem):
            path.append(cause.key)
        if item["type"] == "value_error" and cause is not None:
            message = str(cause)
        else:
            message = item["msg"][:1].lower() + item["msg"][1:]
            if not isinstance(item["input"], dict | list | tuple) and item["type"] != "missing":
                message += f", got {item['input']!r}"
        lines.append(f"config {'.'.join(path) or '(top level)'}: {message}")
    return "\n".join(lines)
