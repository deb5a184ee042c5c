"""Getting started: shipped profiles by name from any folder, `profiles`, `init`, and the profile's JSON Schema."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

from multispin_cli.documents.catalog import shipped_profiles
from multispin_cli.documents.jsonschema import profile_schema
from multispin_cli.documents.profile import REQUIRED, SCHEMA, load_profile
from multispin_cli.errors import ProfileError

SHIPPED = sorted(shipped_profiles())


# ----------------------------------------------------------------- a small JSON Schema validator


def validate(value, schema: dict, where: str = "") -> list[str]:
    """The errors of ``value`` against the JSON Schema subset the profile schema uses."""
    errors: list[str] = []
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    if kind is not None:
        ok = isinstance(value, types[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{where}: not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for word, bad in (("minimum", lambda b: value < b), ("exclusiveMinimum", lambda b: value <= b),
                          ("maximum", lambda b: value > b), ("exclusiveMaximum", lambda b: value >= b)):
            if word in schema and bad(schema[word]):
                errors.append(f"{where}: {word} {schema[word]}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            errors.append(f"{where}: length {len(value)}")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}.{key}: required")
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}.{key}: not allowed")
    return errors


# ----------------------------------------------------------------- profiles by name


def test_a_shipped_profile_plans_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("campus-32-mixed", "campus-32-mixed.toml"):
        result = invoke("plan", name, "-f", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["plan"]["profile"] == name  # as given, not an install path


def test_a_local_file_wins_over_a_shipped_name(tmp_path, monkeypatch, write_profile):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "campus-32-mixed").write_text(MINIMAL_PROFILE)
    doc = json.loads(invoke("plan", "campus-32-mixed", "-f", "json").stdout)
    assert doc["plan"]["users"] != 32


def test_an_unknown_name_suggests_the_nearest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("plan", "campus-32"), "did you mean campus-32-mixed?")
    assert_one_line_error(invoke("plan", "nothing-like-it.toml"), "no such file")


@pytest.mark.parametrize("command", [["simulate", "--rounds", "50"], ["schedule", "-b", "1,2"]])
def test_every_profile_command_takes_names(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(command[0], "qwen3-l4-laptops-phones", *command[1:])
    assert result.exit_code == 0, result.stderr


def test_profiles_lists_each_on_one_line_within_80_columns():
    result = invoke("profiles")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == SHIPPED
    assert all(len(line) <= 80 and len(line.split()) > 2 for line in lines)


# ----------------------------------------------------------------- init


def test_init_writes_a_commented_profile_that_plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = invoke("init").stdout
    assert text.count("#") > 10
    (tmp_path / "my.toml").write_text(text)
    result = invoke("plan", "my.toml")
    assert result.exit_code == 0, result.stderr
    assert "heterogeneous" in result.stdout
    out = invoke("init", "-o", "mine.toml")
    assert out.exit_code == 0 and out.stdout == "" and "multispin plan mine.toml" in out.stderr
    assert load_profile(tmp_path / "mine.toml").system.users == 6


# ----------------------------------------------------------------- the JSON Schema


def test_schema_command_prints_the_schema():
    result = invoke("schema", "profile")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == profile_schema()
    assert json.loads(invoke("schema").stdout) == profile_schema()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_validates(name):
    data = tomllib.loads(shipped_profiles()[name].read_text())
    assert validate(data, profile_schema()) == []


def test_the_starter_profile_validates():
    assert validate(tomllib.loads(invoke("init").stdout), profile_schema()) == []


def test_schema_and_loader_know_the_same_keys():
    schema = profile_schema()["properties"]
    assert set(schema) == set(SCHEMA)
    for table, keys in SCHEMA.items():
        props = schema[table]["items" if table == "devices" else "properties"]
        props = props["properties"] if table == "devices" else props
        assert set(props) == {k.name for k in keys}
        required = (schema[table]["items"] if table == "devices" else schema[table]).get("required", [])
        assert set(required) == {k.name for k in keys if k.default is REQUIRED}


def _bound_cases():
    """(table, key, a value just outside one of its bounds) for every bounded numeric key."""
    for table, keys in SCHEMA.items():
        for key in keys:
            if key.kind not in ("float", "int"):
                continue
            step = 1 if key.kind == "int" else 1e-6
            for bound, outside in ((key.low, -step), (key.above, 0), (key.below, 0), (key.high, step)):
                if bound is not None and math.isfinite(bound):
                    value = bound + outside
                    yield pytest.param(table, key.name, int(value) if key.kind == "int" else value,
                                       id=f"{table}.{key.name}={value:g}")


def _with(table: str, key: str, value) -> dict:
    data = tomllib.loads(MINIMAL_PROFILE)
    if table == "devices":
        data["devices"][0][key] = value
    else:
        data.setdefault(table, {})[key] = value
    return data


@pytest.mark.parametrize(("table", "key", "value"), list(_bound_cases()))
def test_schema_and_loader_reject_the_same_out_of_bounds_values(table, key, value, tmp_path):
    import tomli_w

    data = _with(table, key, value)
    assert validate(data, profile_schema()) != [], "the schema lets it through"
    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert key in str(err.value)


@pytest.mark.parametrize("table,key", [(t, k.name) for t, keys in SCHEMA.items() for k in keys
                                       if k.kind in ("float", "int", "choice")])
def test_schema_and_loader_reject_a_wrong_type_or_choice(table, key, tmp_path):
    import tomli_w

    data = _with(table, key, "surely-not-valid")
    assert validate(data, profile_schema()) != []
    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert key in str(err.value)


@pytest.mark.parametrize("command", [["sweep", "--set", "system.bandwidth_mhz=5,10", "--workers", "1"],
                                     ["capacity", "--min-bandwidth-for-goodput", "100"]])
def test_sweep_and_capacity_take_names_too(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(command[0], "qwen3-l4-laptops-phones", *command[1:])
    assert result.exit_code == 0, result.stderr
