"""What every schema model shares, and the one place a ValidationError becomes an hpo error.

Values are strict: an integer is an ``int`` (not ``True``, ``2.0`` or ``"2"``), a number is an
``int`` or a ``float`` (not a bool, NaN or infinity), text is a ``str``. The types below carry
hpo's own wording (``must be an integer >= 1, got 0``), so every format words its errors alike.

Two ways in, two kinds of error:

* reading a file validates with :data:`READING` as the context; errors stay pydantic's, with
  their key path, until :func:`read` turns the first one into a :class:`ConfigError` line that
  names the file and the path (``best.yaml: configs[0].training.batch_size must be ...``);
* code that builds a model itself (``StudyConfig(...)``, ``Architecture(...)``,
  ``dataclasses.replace``) gets the model's own user error, ``error_class``, at once.

In every format a key written with no value (``null``) is the same as a key left out.
"""

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hpo.errors import ConfigError, HpoError, shown

#: The validation context of a file being read: errors keep their key path for :func:`read`.
READING: dict[str, str] = {"hpo": "reading a file"}

_PREDICATE = "hpo"  # "<path> <message>": the message goes on from the path ("must be ...")
_SENTENCE = "hpo_sentence"  # "<path>: <message>": the message is a sentence of its own
_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_MISSING = frozenset({"missing", "missing_argument", "missing_keyword_only_argument"})
_MAPPING = frozenset({"model_type", "model_attributes_type", "dataclass_type", "dict_type"})
_LIST = frozenset({"list_type", "tuple_type", "iterable_type"})


def invalid(message: str) -> PydanticCustomError:
    """An error whose message goes on from the key path: ``configs[0] needs either ...``."""
    return PydanticCustomError(_PREDICATE, "{message}", {"message": message})


def problem(message: str) -> PydanticCustomError:
    """An error whose message is a sentence of its own: ``configs[0].model: unknown model ...``."""
    return PydanticCustomError(_SENTENCE, "{message}", {"message": message})


def got(value: Any) -> str:
    """How a message echoes a value the user gave: short, and containers by their kind."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "nothing" if value is None else shown(value)


def says(rule: str, kind: str | None = None) -> WrapValidator:
    """Word a value's error ``must be <rule>, got <value>`` (``<kind>`` for a wrong type)."""

    def check(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            wrong_type = kind is not None and exc.errors()[0]["type"].endswith(
                ("_type", "_parsing")
            )
            raise invalid(f"must be {kind if wrong_type else rule}, got {got(value)}") from None

    return WrapValidator(check)


def whole(low: int, high: int | None = None) -> Any:
    """An integer from ``low`` (to ``high``)."""
    bounds = f">= {low}" if high is None else f"from {low} to {high}"
    return Annotated[
        int, Strict(), Field(ge=low, le=high), says(f"an integer {bounds}", "an integer")
    ]


def number(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Any:
    """A finite number within the bounds given (an integer is a number too)."""
    if gt is not None and lt is not None:
        words = f"between {gt:g} and {lt:g}"
    elif lt is not None or le is not None:
        start = ge if ge is not None else gt
        words = f"from {start:g} to " + (f"below {lt:g}" if lt is not None else f"{le:g}")
    else:
        words = f"above {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else ""
    return Annotated[
        float,
        Strict(),
        Field(gt=gt, ge=ge, lt=lt, le=le, allow_inf_nan=False),
        says(f"a number {words}".strip(), "a number"),
    ]


def choice(options: tuple[str, ...]) -> Any:
    """One of ``options`` (a tuple defined once, where the choice belongs)."""
    return Annotated[Literal[options], says(f"one of {', '.join(options)}")]  # type: ignore[valid-type]


def text(rule: str = "text", *, pattern: str | None = None) -> Any:
    """Non-empty text (matching ``pattern``); any error says ``must be <rule>``."""
    return Annotated[str, Strict(), Field(min_length=1, pattern=pattern), says(rule)]


Flag = Annotated[bool, Strict(), says("true or false")]


class Checked:
    """The base of every schema model (a pydantic BaseModel or dataclass, extra keys forbidden).

    It drops keys written as null, lets a model fill in keys that follow from others
    (:meth:`prepare`) and check rules across fields (:meth:`check`), words unknown keys with the
    allowed ones, and turns errors of direct construction into ``error_class``.
    """

    #: What building the model in code raises for a bad value: a one-line user error.
    error_class: ClassVar[type[HpoError]] = ConfigError
    #: Keys a file may hold besides the fields, read before validation (a study's ``extends``).
    other_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The mapping to validate: keys that follow from others filled in (a named model's)."""
        return data

    def check(self) -> None:
        """Rules across fields, once each is valid: raise :func:`problem` or :func:`invalid`."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a mapping of this model may hold."""
        if dataclasses.is_dataclass(cls):
            return (*cls.other_keys, *(f.name for f in dataclasses.fields(cls)))
        return (*cls.other_keys, *cls.model_fields)  # type: ignore[attr-defined]

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        try:
            if isinstance(data, Mapping):
                data = cls.prepare({k: v for k, v in data.items() if v is not None})
            try:
                value = handler(data)
            except ValidationError as exc:
                unknown = [
                    str(e["loc"][0])
                    for e in exc.errors()
                    if e["type"] in _UNKNOWN and len(e["loc"]) == 1
                ]
                if not unknown:
                    raise
                allowed = ", ".join(cls.keys())
                raise invalid(
                    f"has unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
                ) from None
            value.check()
            return value
        except (ValidationError, PydanticCustomError) as exc:
            if info.context is READING:
                raise
            if isinstance(exc, PydanticCustomError):
                raise cls.error_class(exc.message()) from None
            raise cls.error_class(describe(exc)) from None


def describe(exc: ValidationError, at: tuple[str | int, ...] = ()) -> str:
    """The first error as one line: the key path (after ``at``) and what is wrong with it."""
    error = exc.errors(include_url=False)[0]
    kind = error["type"]
    path = _path((*at, *error["loc"]))
    if kind == _SENTENCE:
        return f"{path}: {error['ctx']['message']}" if path else error["ctx"]["message"]
    if kind == _PREDICATE:
        message = error["ctx"]["message"]
    elif kind in _MISSING:
        message = "is missing (required)"
    elif kind in _UNKNOWN:
        message = "is not a key this format knows"
    elif kind in _MAPPING:
        message = f"must be a mapping, got {got(error['input'])}"
    elif kind in _LIST:
        message = f"must be a list, got {got(error['input'])}"
    elif kind == "too_short":
        least = error["ctx"]["min_length"]
        message = "must be a non-empty list" if least == 1 else f"must hold at least {least} items"
    elif kind == "too_long":
        message = f"must hold at most {error['ctx']['max_length']} items"
    else:
        message = (
            f"is not valid ({error['msg'][0].lower()}{error['msg'][1:]}), got {got(error['input'])}"
        )
    return f"{path or 'the document'} {message}"


def _path(loc: tuple[str | int, ...]) -> str:
    """``configs[0].training.batch_size``; a mapping's key is ``.key`` whatever its type."""
    out = ""
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        is_key = i + 1 < len(loc) and loc[i + 1] == "[key]"
        if isinstance(part, int) and not is_key:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read(
    model: Any, data: Any, where: str, error: type[HpoError] = ConfigError, at: tuple = ()
) -> Any:
    """``data`` validated as ``model`` (a class or a TypeAdapter); an error names ``where``."""
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        return adapter.validate_python(data, context=READING)
    except ValidationError as exc:
        line = describe(exc, at)
        raise error(f"{where}: {line}" if where else line) from None
