"""`multispin export`: every engine's output parses in its own format and carries the planned lengths."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest
from builders import invoke

from multispin_cli.documents.planfile import load_plan_file
from multispin_cli.documents.profile import load_profile
from multispin_cli.errors import InputError
from multispin_cli.planners.report import plan_report
from multispin_cli.render.document import plan_document, to_json, to_toml
from multispin_cli.render.export import (
    DRAFT_PLACEHOLDER,
    ENGINES,
    ExportUser,
    export_plan,
    export_users,
    get_engine,
    to_yaml,
)

# Three phones, a laptop and a slow IoT board: the heterogeneous plan gives the phones one length,
# the laptop a longer one and the IoT board none (checked below, not assumed).
MIXED = """
[system]
name = "mixed cell"
bandwidth_mhz = 10
max_draft_length = 8

[payload]
kind = "token-ids"
vocab_size = 151936
header_bits = 64

[server]
target = "Qwen2.5-7B"
target_model = "Qwen/Qwen2.5-7B-Instruct"
verify_base_ms = 40
verify_ms_per_token = 0.3

[[devices]]
name = "phone"
count = 3
acceptance = 0.8
draft_ms_per_token = 6
snr_db = 10
draft_model = "Qwen/Qwen2.5-0.5B-Instruct"

[[devices]]
name = "laptop"
acceptance = 0.6
draft_ms_per_token = 3
snr_db = 20
draft_model = "Qwen/Qwen2.5-1.5B-Instruct"

[[devices]]
name = "iot"
acceptance = 0.3
draft_ms_per_token = 30
snr_db = 0
draft_model = "Qwen/Qwen2.5-0.5B-Instruct"
"""


def write_plan(tmp_path: Path, profile_text: str = MIXED, fmt: str = "toml", name: str = "plan") -> Path:
    profile = tmp_path / "cell.toml"
    profile.write_text(textwrap.dedent(profile_text))
    loaded = load_profile(profile)
    doc = plan_document(loaded, plan_report(loaded.system))
    path = tmp_path / f"{name}.{fmt}"
    path.write_text(to_toml(doc) if fmt == "toml" else to_json(doc))
    return path


@pytest.fixture
def plan_path(tmp_path):
    return write_plan(tmp_path)


def planned(path: Path, which: str = "heterogeneous") -> dict[str, tuple[int, str | None]]:
    section = load_plan_file(path).plans[which]
    return {u.name: (u.draft_length, u.draft_model) for u in section.users}


def test_the_fixture_plan_mixes_lengths_including_zero(plan_path):
    lengths = {n for n, _ in planned(plan_path).values()}
    assert 0 in lengths and len(lengths - {0}) >= 2  # off, and two different drafting lengths


# --------------------------------------------------------------------------- parsers used below


def parse_flag_blocks(text: str) -> list[tuple[str, list[str] | None]]:
    """(comment, flags or None) per block: a '#' line, then at most one line of flags."""
    blocks: list[tuple[str, list[str] | None]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            blocks.append((line, None))
        else:
            assert blocks and blocks[-1][1] is None, f"flags without a comment before them: {line!r}"
            blocks[-1] = (blocks[-1][0], shlex.split(line))
    return blocks


def flag_map(flags: list[str]) -> dict[str, str]:
    assert len(flags) % 2 == 0, flags
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert len(pairs) == len(flags) // 2, "a flag is repeated"
    return pairs


def users_of(comment: str, names) -> list[str]:
    """The users a block's comment names (the text between 'for user(s) ' and the colon)."""
    head = comment.split(" for ", 1)[1]
    listed = head.split(":", 1)[0].removeprefix("users ").removeprefix("user ")
    found = [n.strip() for n in listed.split(",")]
    assert set(found) <= set(names), found
    return found


def _yaml_value(text: str):
    text = text.strip()
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"'):
        return json.loads(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_yaml_documents(text: str) -> list[tuple[str, dict]]:
    """A small structural parser for the block YAML subset the exporter writes (comment, mapping)."""
    docs = []
    for chunk in text.split("\n---\n"):
        comment, mapping = "", {}
        stack = [(-1, mapping)]
        for line in chunk.splitlines():
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                comment = line
                continue
            indent = len(line) - len(line.lstrip(" "))
            key, sep, rest = line.strip().partition(":")
            assert sep, f"not a mapping line: {line!r}"
            while stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1]
            key = int(key) if key.isdigit() else key
            if rest.strip():
                parent[key] = _yaml_value(rest)
            else:
                parent[key] = {}
                stack.append((indent, parent[key]))
        docs.append((comment, mapping))
    return docs


# --------------------------------------------------------------------------- each engine


def test_vllm_json_per_user_carries_the_planned_lengths(plan_path):
    result = invoke("export", plan_path, "--engine", "vllm")
    assert result.exit_code == 0, result.stderr
    configs = json.loads(result.stdout)
    expected = planned(plan_path)
    assert list(configs) == list(expected)
    for name, (length, model) in expected.items():
        if length == 0:
            assert configs[name] is None
        else:
            assert configs[name] == {"method": "draft_model", "model": model, "num_speculative_tokens": length}
    off = [n for n, (length, _) in expected.items() if length == 0]
    assert "without --speculative-config" in result.stderr and off[0] in result.stderr


def test_one_user_is_one_line_of_json_ready_for_the_flag(plan_path):
    expected = planned(plan_path)
    name = max(expected, key=lambda n: expected[n][0])
    result = invoke("export", plan_path, "--engine", "vllm", "--user", name)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout)["num_speculative_tokens"] == expected[name][0]


def test_sglang_flags_describe_a_standalone_chain_of_the_planned_length(plan_path):
    result = invoke("export", plan_path, "-e", "sglang")
    assert result.exit_code == 0, result.stderr
    expected = planned(plan_path)
    seen = []
    for comment, flags in parse_flag_blocks(result.stdout):
        names = users_of(comment, expected)
        seen += names
        lengths = {expected[n][0] for n in names}
        assert len(lengths) == 1
        length = lengths.pop()
        if length == 0:
            assert flags is None and "speculation off" in comment
            continue
        f = flag_map(flags)
        assert f["--speculative-algorithm"] == "STANDALONE"
        assert f["--speculative-draft-model-path"] == expected[names[0]][1]
        assert int(f["--speculative-num-steps"]) == length
        assert int(f["--speculative-eagle-topk"]) == 1
        assert int(f["--speculative-num-draft-tokens"]) == length + 1
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("legacy", [False, True])
def test_llama_cpp_flags_current_and_legacy_spelling(plan_path, legacy):
    args = ["export", plan_path, "--engine", "llama.cpp"] + (["--legacy"] if legacy else [])
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    expected = planned(plan_path)
    seen = []
    for comment, flags in parse_flag_blocks(result.stdout):
        names = users_of(comment, expected)
        seen += names
        length = expected[names[0]][0]
        if length == 0:
            assert flags is None if legacy else flags == ["--spec-type", "none"]
            continue
        f = flag_map(flags)
        assert f["-md"] == expected[names[0]][1]
        if legacy:
            assert int(f["--draft-max"]) == int(f["--draft-min"]) == length
            assert not any(k.startswith("--spec-") for k in f)
        else:
            assert f["--spec-type"] == "draft-simple"
            assert int(f["--spec-draft-n-max"]) == int(f["--spec-draft-n-min"]) == length
            assert float(f["--spec-draft-p-min"]) == 0.0
            assert "--draft-max" not in f
    assert sorted(seen) == sorted(expected)
    assert "GGUF" in result.stderr and "Qwen/Qwen2.5-0.5B-Instruct" in result.stderr  # -md wants a file


def test_llama_cpp_gguf_paths_need_no_note():
    users = [ExportUser("a", 3, "/models/draft-q4.gguf"), ExportUser("b", 0, "Qwen/x")]
    result = export_users(users, "llama.cpp")
    assert result.notes == ()
    assert "-md /models/draft-q4.gguf --spec-draft-n-max 3" in result.text


def test_trtllm_yaml_documents_carry_draft_target_and_lengths(plan_path):
    result = invoke("export", plan_path, "--engine", "TensorRT-LLM")  # an alias, any case
    assert result.exit_code == 0, result.stderr
    expected = planned(plan_path)
    docs = parse_yaml_documents(result.stdout)
    seen = []
    for comment, doc in docs:
        names = users_of(comment, expected)
        seen += names
        length = expected[names[0]][0]
        if length == 0:
            assert doc == {"speculative_config": None}
            continue
        spec = doc["speculative_config"]
        assert spec == {"decoding_type": "DraftTarget", "max_draft_len": length,
                        "speculative_model": expected[names[0]][1]}
    assert sorted(seen) == sorted(expected)


def test_hf_generation_config_fragment(plan_path):
    result = invoke("export", plan_path, "--engine", "hf")
    assert result.exit_code == 0, result.stderr
    configs = json.loads(result.stdout)
    for name, (length, _) in planned(plan_path).items():
        if length == 0:
            assert configs[name] is None
        else:
            assert configs[name]["num_assistant_tokens"] == length
            assert configs[name]["num_assistant_tokens_schedule"] == "constant"
            assert configs[name]["assistant_confidence_threshold"] == 0.0


def test_plan_choice_and_json_plan_files(tmp_path):
    path = write_plan(tmp_path, fmt="json")
    homogeneous = planned(path, "homogeneous")
    result = invoke("export", path, "--engine", "hf", "--plan", "homogeneous")
    assert result.exit_code == 0, result.stderr
    config = json.loads(result.stdout)  # one length for everyone: the one object, not one per user
    common = {n for n, _ in homogeneous.values()}
    assert len(common) == 1
    length = common.pop()
    assert (config is None) if length == 0 else config["num_assistant_tokens"] == length


def test_output_file_is_written_and_stdout_stays_empty(plan_path, tmp_path):
    out = tmp_path / "spec.yaml"
    result = invoke("export", plan_path, "--engine", "trtllm", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "wrote trtllm config" in result.stderr
    assert parse_yaml_documents(out.read_text())


def test_missing_draft_model_uses_a_placeholder_and_says_so(tmp_path):
    text = MIXED.replace('draft_model = "Qwen/Qwen2.5-1.5B-Instruct"\n', "")
    path = write_plan(tmp_path, text)
    result = invoke("export", path, "--engine", "vllm", "--user", "laptop")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["model"] == DRAFT_PLACEHOLDER
    assert "laptop" in result.stderr and "draft_model" in result.stderr


# --------------------------------------------------------------------------- bad input


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("multispin: error:") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_engine_lists_the_known_ones(plan_path):
    one_line_error(invoke("export", plan_path, "--engine", "tgi"), "unknown engine 'tgi'", *ENGINES)


def test_plan_file_from_another_version(plan_path):
    plan_path.write_text(plan_path.read_text().replace("format_version = 1", "format_version = 99"))
    one_line_error(invoke("export", plan_path, "--engine", "vllm"), "format_version", "99")


def test_plan_file_with_missing_keys(plan_path):
    text = plan_path.read_text()
    first = text.index("draft_length = ", text.index("[[heterogeneous.users]]"))
    plan_path.write_text(text[:first] + text[text.index("\n", first) + 1:])
    one_line_error(invoke("export", plan_path, "--engine", "vllm"), "heterogeneous.users[1].draft_length", "missing")


def test_not_a_plan_file(tmp_path):
    path = tmp_path / "cell.toml"
    path.write_text(textwrap.dedent(MIXED))
    one_line_error(invoke("export", path, "--engine", "vllm"), "[plan]")
    one_line_error(invoke("export", tmp_path / "nope.toml", "--engine", "vllm"), "no such file")


def test_user_not_in_the_plan(plan_path):
    one_line_error(invoke("export", plan_path, "--engine", "sglang", "--user", "phone-9"),
                   "user 'phone-9' is not in the heterogeneous plan", "phone-1")


def test_plan_section_the_file_does_not_hold(tmp_path):
    profile = tmp_path / "cell.toml"
    profile.write_text(textwrap.dedent(MIXED))
    path = tmp_path / "hom.toml"
    assert invoke("plan", profile, "-m", "homogeneous", "-f", "toml", "-o", path).exit_code == 0
    one_line_error(invoke("export", path, "-e", "vllm", "--plan", "heterogeneous"),
                   "no [heterogeneous] plan", "homogeneous")
    assert invoke("export", path, "-e", "vllm").exit_code == 0  # the default takes what the file holds


def test_legacy_is_only_for_llama_cpp(plan_path):
    one_line_error(invoke("export", plan_path, "--engine", "vllm", "--legacy"), "--legacy", "llama.cpp")


# --------------------------------------------------------------------------- library


def test_registry_lookup_and_error_type():
    assert get_engine("LLAMA-CPP").name == "llama.cpp"
    assert get_engine("transformers").name == "hf"
    with pytest.raises(InputError, match="known engines: vllm, sglang, llama.cpp, trtllm, hf"):
        get_engine("vlm")


def test_export_plan_library_matches_the_cli(plan_path):
    section = load_plan_file(plan_path).section()
    for engine in ENGINES:
        library = export_plan(section, engine, target_model="Qwen/Qwen2.5-7B-Instruct").text
        assert invoke("export", plan_path, "--engine", engine).stdout == library


def test_yaml_writer_round_trips_through_the_test_parser():
    data = {"a": {"b": 1, "c": "x: y", "d": None, "e": {"4": 2}}, "f": True, "g": 0.5}
    ((_, back),) = parse_yaml_documents(to_yaml(data))
    assert back == {"a": {"b": 1, "c": "x: y", "d": None, "e": {4: 2}}, "f": True, "g": 0.5}


def test_long_groups_are_named_by_their_ends_and_count():
    users = [ExportUser(f"u{i}", 2, "d") for i in range(12)]
    text = export_users(users, "sglang").text
    assert text.startswith("# SGLang launch flags for users u0, u1, u2, ..., u11 (12 users): draft length 2\n")
    assert len(text.splitlines()) == 2
