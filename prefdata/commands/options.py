"""CLI options generated from the curation steps' config models, as TRL builds its CLI from its config dataclasses.

A command declares its own parameters (input, output, switches such as --near) and the configs whose fields
become options; each field's type, default and description give the option's type, default and help, so a new
field of a step is an option of its command without touching the CLI. `Configs` is handed to the command: it
builds a config from the options given (a bad value is one line naming the option) and reads single values.

Fields of several configs that map to the same option name share it (`--keep` sets the exact and the near
dedupe's). A list field takes the option repeated or comma-separated (`--language en,de`), unless it lists paths.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Literal, Optional, Union

import typer
from pydantic_core import PydanticUndefined


@dataclass(frozen=True)
class Group:
    """The options of one config class: `--{prefix}-{field}` unless `names` gives a field its own option name;
    `skip`: fields that are not options; `paths`: list fields whose values are never split at commas."""

    config: type
    prefix: str = ""
    names: dict[str, str] = field(default_factory=dict)  # a bool's may name both sides: "--merge/--adapter"
    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # just these fields (default: every field the command line can spell)
    paths: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # more names of an option: --lr
    when: str = ""  # the switch that turns the step on, said in each option's help
    overrides: bool = False  # options that override a config file: None (not given) by default

    def option(self, name: str) -> str:
        if name in self.names:
            return self.names[name].split("/")[0]
        return "--" + (f"{self.prefix}-" if self.prefix else "") + name.replace("_", "-")

    def fields(self) -> dict[str, Any]:
        return {name: info for name, info in self.config.model_fields.items()
                if name != "step" and name not in self.skip and (not self.only or name in self.only)
                and _cli_type("X", info.annotation) is not None}


def _param(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else Union[tuple(args)]), len(args) < len(typing.get_args(annotation))
    return annotation, False


def _choices(name: str, literal: Any) -> type[Enum]:
    values = [str(v) for v in typing.get_args(literal)]
    return Enum(name, {v: v for v in values}, type=str)


def _cli_type(name: str, annotation: Any, optional: bool = False) -> Any:
    """The type typer parses for a field; None for a field no option can spell (a mapping, a string-or-list),
    which stays a config-file setting. A list takes strings: the config checks its items (a Literal's included)."""
    inner, none_allowed = _unwrap(annotation)
    if typing.get_origin(inner) is list:
        return list[str]
    if typing.get_origin(inner) is Literal:
        inner = _choices(name, inner)
    elif inner not in (str, int, float, bool):
        return None
    return Optional[inner] if none_allowed or optional else inner


def _help(info: Any, when: str) -> str:
    return " ".join((info.description or "").split()) + (f" (with {when})" if when else "")


@dataclass
class _Option:
    param: str  # the Python name typer passes it under
    option: str  # --the-option
    annotation: Any
    default: Any
    help: str
    decls: tuple[str, ...]

    def parameter(self) -> inspect.Parameter:
        default = self.default
        if isinstance(self.annotation, type) and issubclass(self.annotation, Enum):
            default = self.annotation(default)
        return inspect.Parameter(self.param, inspect.Parameter.KEYWORD_ONLY, annotation=self.annotation,
                                 default=typer.Option(default, *self.decls, help=self.help))


def _options(groups: tuple[Group, ...]) -> dict[str, _Option]:
    found: dict[str, _Option] = {}
    for group in groups:
        for name, info in group.fields().items():
            option = group.option(name)
            if option in found:  # shared with an earlier config's field
                continue
            annotation = _cli_type(_param(option).title().replace("_", ""), info.annotation,
                                   optional=group.overrides)
            if group.overrides:  # not given: the config file's value, or the field's default
                default = None
            else:  # a required field (a list of paths) is an option given when its step is wanted
                default = [] if info.is_required() else info.get_default(call_default_factory=True)
            decls = (option,)
            if _unwrap(annotation)[0] is bool:
                decls = (group.names[name] if "/" in group.names.get(name, "") else f"{option}/--no-{option[2:]}",)
            decls += group.aliases.get(name, ())
            help_ = _help(info, group.when)
            if group.overrides and info.default not in (None, PydanticUndefined) and "default" not in help_:
                help_ += f" (default: {info.default})"  # the field's, where neither file nor option sets it
            found[option] = _Option(_param(option), option, annotation, default, help_, decls)
    return found


class Configs:
    """The generated options' values, and configs built from them."""

    def __init__(self, groups: tuple[Group, ...], values: dict[str, Any]):
        self.groups = {group.config: group for group in groups}
        self.values = values  # by option name

    def value(self, config: type, name: str) -> Any:
        """The value given for a field (after list splitting), or its default."""
        group = self.groups[config]
        value = self.values[group.option(name)]
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, (list, tuple)):
            items = list(value)
            return items if name in group.paths else [p.strip() for item in items for p in item.split(",") if p.strip()]
        return value

    def given(self, config: type) -> dict[str, Any]:
        """The fields whose options were given (for a config file's values to override)."""
        values = {name: self.value(config, name) for name in self.groups[config].fields()}
        return {name: value for name, value in values.items() if value is not None}

    def make(self, config: type) -> Any:
        """The config from the options (a bad value: one line naming the option, exit 2)."""
        group = self.groups[config]
        values = self.given(config)  # None: the field's default
        return make_config(config, {name: group.option(name) for name in group.fields()}, **values)


def make_config(cls: type, options: Optional[dict] = None, **values: Any) -> Any:
    """`cls(**values)`, with a pydantic ValidationError turned into one line naming the option
    (`options` maps a field to its option name where they differ)."""
    from pydantic import ValidationError

    from prefdata.errors import PrefdataError

    try:
        return cls(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            where = (options or {}).get(name, "--" + name.replace("_", "-")) if name else "options"
            problems.append(f"{where}: {error['msg']}")
        raise PrefdataError("; ".join(problems)) from None


def with_options(*groups: Group) -> Callable[[Callable], Callable]:
    """Give a command the options of these configs; it receives them as `configs: Configs` (its last parameter)."""
    generated = _options(groups)

    def wrap(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "configs"]
        clash = {p.name for p in own} & {o.param for o in generated.values()}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} clash with generated options")

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            values = {o.option: given.pop(o.param) for o in generated.values()}
            return command(**given, configs=Configs(groups, values))

        run.__signature__ = inspect.Signature(_ordered(own, groups, generated))
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        del run.__wrapped__  # typer must read the generated signature, not the command's
        return run

    return wrap


def _ordered(own: list[inspect.Parameter], groups: tuple[Group, ...],
             generated: dict[str, _Option]) -> list[inspect.Parameter]:
    """Arguments, then each config's options (after the switch that turns its step on, such as --near), then the
    command's other options (input format, errors, output)."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    ordered = [p for p in own if not _is_option(p)]
    switches = {p.name: p for p in own if _is_option(p)}
    placed: set[str] = set()
    for group in groups:
        switch = switches.get(_param(group.when)) if group.when else None
        if switch is not None:
            ordered.append(switch)
        for name in group.fields():
            option = generated[group.option(name)]
            if option.option not in placed:
                placed.add(option.option)
                ordered.append(option.parameter())
    return ordered + [p for p in switches.values() if p not in ordered]


def _is_option(parameter: inspect.Parameter) -> bool:
    return type(parameter.default).__name__ == "OptionInfo"
