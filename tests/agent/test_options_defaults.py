"""Run options: every default written once (agent/options.py), and each front end's adapter
(app settings, `deskhand run`, `deskhand mcp`, `deskhand runs replay`, `deskhand eval run`)
builds equal `RunOptions` from equal inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent.eval.settings import EvalSettings
from agent.loop import RunConfig
from agent.options import (
    DEFAULTS,
    POLICIES,
    PROVIDERS,
    RETIRED_SEARCH_URL,
    ConfirmPolicy,
    Provider,
    RunOptions,
    from_args,
)
from agent.safety import Gate, Limits, Policy
from app.commands import build_parser
from app.settings import Settings, read_settings, save_settings, settings_path

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "agent" / "options.py"

# A literal copy of a run default anywhere but agent/options.py is a second owner.
DUPLICATES = {
    "max_steps 30": re.compile(r"max[_-]steps[^\n]{0,40}?(=|\(|default=)\s*30\b"),
    "max minutes 30": re.compile(r"max[_-](minutes|seconds)[^\n]{0,30}?(=|default=)\s*30\b"),
    "settle 3.0": re.compile(r"(settle[_-]timeout|timeout: float)[^\n]{0,40}?(=|default=)\s*3\.0\b"),
    "confirm timeout 60": re.compile(r"(confirm_)?timeout: float = 60(\.0)?\b"),
    "provider list": re.compile(r"""["']cpu["'],\s*["']cuda["'],\s*["']dml["']"""),
    "policy list": re.compile(r"""["']never["'],\s*["']risky["'],\s*["']always["']"""),
    "deny titles": re.compile(r"""["']password["'],\s*["']bank["']"""),
    "search URL": re.compile(r"127\.0\.0\.1:8765"),
    # The reply length, in the loop, the backend base class and the model process alike.
    "max new tokens 512": re.compile(r"max_new_tokens(: int)?\s*=\s*512\b"),
    # The provider default, in every backend and factory signature and every call that spells it.
    "provider auto": re.compile(r"""provider(: str)?\s*=\s*["']auto["']"""),
}


def _sources() -> list[Path]:
    return [p for package in ("agent", "app", "models") for p in sorted((ROOT / package).rglob("*.py"))
            if p != OWNER]


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_each_run_default_is_written_only_in_agent_options(name: str) -> None:
    pattern, found = DUPLICATES[name], []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, f"{name} written outside agent/options.py:\n" + "\n".join(found)


def test_the_owner_holds_the_defaults() -> None:
    assert (DEFAULTS.max_steps, DEFAULTS.max_minutes, DEFAULTS.settle_timeout) == (30, 30.0, 3.0)
    assert PROVIDERS == ("auto", "cpu", "cuda", "dml")
    assert POLICIES == ("never", "risky", "always")  # laxest to strictest
    assert DEFAULTS.search_url == ""  # none configured: see tests/agent/test_options_search.py


def test_enums_are_their_strings() -> None:
    options = RunOptions(policy="always", provider="cuda")
    assert options.policy is ConfirmPolicy.ALWAYS and options.provider is Provider.CUDA
    assert options.policy == "always" and f"{options.provider}" == "cuda"
    assert json.dumps({"p": options.policy}) == '{"p": "always"}'
    assert Policy is ConfirmPolicy and Gate("never").policy is ConfirmPolicy.NEVER
    with pytest.raises(ValueError):
        RunOptions(policy="sometimes")
    with pytest.raises(ValueError):
        RunOptions(provider="tpu")
    with pytest.raises(ValueError, match="query"):
        RunOptions(search_url="http://127.0.0.1/search")


def test_engine_types_take_their_defaults_from_the_options() -> None:
    assert Limits.from_options(DEFAULTS) == Limits()
    assert RunConfig.from_options(DEFAULTS) == RunConfig()
    custom = RunOptions(max_steps=7, max_minutes=2, settle_timeout=0.5, monitor=2,
                        history_scale=0.5, idle_waits=3, offline=False)
    config = RunConfig.from_options(custom, offline_allow=("10.0.0.2",))
    assert config.limits == Limits(max_steps=7, max_seconds=120.0)
    assert (config.monitor, config.settle_timeout, config.offline, config.offline_allow,
            config.history_scale, config.idle_waits) == (2, 0.5, False, ("10.0.0.2",), 0.5, 3)


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_defaults_agree_across_front_ends() -> None:
    app = Settings(deny_titles=[]).run_options()
    assert app == DEFAULTS
    assert from_args(_parse("run", "a task")) == DEFAULTS
    assert from_args(_parse("mcp")) == DEFAULTS
    assert from_args(_parse("runs", "replay", "last")) == DEFAULTS
    evaluated = _parse("eval", "run", "--model", "scripted:solver")
    assert from_args(evaluated) == DEFAULTS
    assert EvalSettings(tasks=Path("t.jsonl"), model="scripted:solver").run_options() == DEFAULTS


def test_equal_inputs_give_equal_options_from_settings_and_command_line() -> None:
    settings = Settings(max_steps=12, settle_timeout=1.5, policy="always", provider="cpu",
                        monitor=2, deny_titles=["bank"], confirm_timeout=20.0,
                        search_url="http://127.0.0.1:9/?q={query}", keep_screenshots=False)
    cli = _parse("run", "a task", "--max-steps", "12", "--settle-timeout", "1.5", "--confirm",
                 "always", "--provider", "cpu", "--monitor", "2", "--deny-title", "bank",
                 "--search-url", "http://127.0.0.1:9/?q={query}", "--no-screenshots")
    assert from_args(cli, confirm_timeout=20.0) == settings.run_options()
    mcp = _parse("mcp", "--max-steps", "12", "--settle-timeout", "1.5", "--provider", "cpu",
                 "--deny-title", "bank", "--confirm-timeout", "20", "--no-screenshots")
    assert from_args(mcp) == settings.run_options().with_changes(
        policy=DEFAULTS.policy, monitor=DEFAULTS.monitor, search_url=DEFAULTS.search_url)


def test_equal_inputs_give_equal_options_from_the_harness_and_its_command_line() -> None:
    args = _parse("eval", "run", "--model", "scripted:solver", "--max-steps", "12",
                  "--provider", "cpu", "--history-scale", "0.5", "--idle-waits", "2")
    settings = EvalSettings(tasks=Path("t.jsonl"), model="scripted:solver",
                            max_steps=args.max_steps, provider=args.provider,
                            history_scale=args.history_scale, idle_waits=args.idle_waits)
    assert settings.run_options(task_max_steps=40) == from_args(args)
    # No --max-steps: the task's own cap, else the default.
    unset = EvalSettings(tasks=Path("t.jsonl"), model="scripted:solver")
    assert unset.run_options(task_max_steps=40).max_steps == 40
    assert unset.run_options().max_steps == DEFAULTS.max_steps


def test_settings_file_keeps_plain_strings_and_forgets_the_dead_search_url(tmp_path) -> None:
    path = save_settings(Settings(policy=ConfirmPolicy.ALWAYS.value, provider="cuda"))
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert (raw["policy"], raw["provider"], raw["search_url"]) == ("always", "cuda", "")
    raw["search_url"] = RETIRED_SEARCH_URL  # as every earlier release saved it
    settings_path().write_text(json.dumps(raw), encoding="utf-8")
    settings, notes = read_settings()
    assert settings.search_url == "" and notes == []
    raw["search_url"] = "http://127.0.0.1:9/find?q={query}"
    settings_path().write_text(json.dumps(raw), encoding="utf-8")
    assert read_settings()[0].search_url == "http://127.0.0.1:9/find?q={query}"
