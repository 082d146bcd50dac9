"""Run records under attack: a thought, a run id, a damaged file or a full disk must never hide,
delete or leak more than what it names (issue 10, "Records and files that a model or a file can
break")."""

from __future__ import annotations

import base64
import errno
import io
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from agent.actions import LeftClick, Terminate, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import run_task
from agent.paths import data_dir, runs_dir
from agent.safety import Gate
from agent.trajectory import TrajectoryError, TrajectoryStore
from app.commands import main
from tests.support.fakes import FakeScreen, RecordingExecutor

# Every character str.splitlines() splits at besides "\n" (the old reader's bug).
BREAKS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r\n"]


def record_run(store: TrajectoryStore, first_thought: str = "Click the box.") -> str:
    rec = store.start("count the boxes")
    run_task("count the boxes",
             backend=ScriptedBackend([format_call(first_thought, LeftClick((10, 10))),
                                      format_call("Second look.", LeftClick((20, 20))),
                                      format_call("There are 3 boxes.", Terminate("success"))]),
             screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"), recorder=rec)
    return rec.run_id


def fake_run(root: Path, run_id: str, meta: object, steps: list[str] | None = None) -> Path:
    """A run folder written by hand: run.json holds `meta` (bytes, str or a JSON value)."""
    path = root / run_id
    path.mkdir(parents=True)
    data = meta if isinstance(meta, bytes) else (
        meta if isinstance(meta, str) else json.dumps(meta)).encode()
    (path / "run.json").write_bytes(data)
    if steps is not None:
        (path / "steps.jsonl").write_text("".join(s + "\n" for s in steps), encoding="utf-8")
    return path


def good_meta(task: str = "a good run", started: float = 1_700_000_000.0) -> dict:
    return {"task": task, "started": started, "status": "success", "steps": 1, "answer": "ok"}


def step_line(index: int, **fields: object) -> str:
    return json.dumps({"index": index, "description": f"step number {index}",
                       "thoughts": f"thought {index}", **fields}, ensure_ascii=False)


# --- 1. one character must not hide the steps after it -----------------------------------------

@pytest.mark.parametrize("ch", BREAKS, ids=[f"U+{ord(c[-1]):04X}" for c in BREAKS])
def test_a_line_break_character_in_a_thought_hides_nothing(ch, capsys, tmp_path) -> None:
    store = TrajectoryStore()
    run_id = record_run(store, f"Look{ch}at the box{ch}")
    record = store.load(run_id)
    assert len(record.steps) == 3 and not record.problems
    assert record.steps[0].thoughts.startswith(f"Look{ch}at the box")
    # The file itself stays one record per line for any line splitter (the writer escapes).
    text = (record.info.path / "steps.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 3
    assert store.list_runs()[0].steps == 3
    assert main(["runs", "show", run_id]) == 0
    out = capsys.readouterr().out
    assert "There are 3 boxes." in out and "[3]" in out
    html = store.export_html(run_id, tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("<section>") == 3 and "There are 3 boxes." in html


@pytest.mark.parametrize("ch", ["\x85", "\u2028", "\u2029"])
def test_files_written_before_the_fix_read_whole(ch) -> None:
    # Old writers left these raw inside strings; the reader splits at "\n" only.
    path = fake_run(runs_dir(), "20260101-000000-abcdef", good_meta(),
                    [step_line(0, thoughts=f"a{ch}b"), step_line(1), step_line(2)])
    assert ch in (path / "steps.jsonl").read_text(encoding="utf-8")
    record = TrajectoryStore().load("20260101-000000-abcdef")
    assert [s.index for s in record.steps] == [0, 1, 2] and record.steps[0].thoughts == f"a{ch}b"


def test_eval_results_and_task_files_split_at_newline_only(tmp_path) -> None:
    from agent.eval.results import EvalResult, ResultsLog, read_results

    log = ResultsLog(tmp_path)
    for i, ch in enumerate(["\u2028", "\x85", "\u2029"]):
        log.append(EvalResult(f"t{i}", answer=f"x{ch}y", passed=True))
    assert [r.key for r in read_results(tmp_path)] == ["t0", "t1", "t2"]
    raw = tmp_path / "old" / "results.jsonl"
    raw.parent.mkdir()
    raw.write_text("".join(json.dumps({"key": f"k{i}", "a": "p\u2028q"}, ensure_ascii=False) + "\n"
                           for i in range(3)), encoding="utf-8")
    assert len(read_results(raw.parent)) == 3


def test_jsonl_reader_skips_huge_and_deep_lines_and_names_them(tmp_path, monkeypatch) -> None:
    import agent.jsonl as jsonl
    from agent.jsonl import read_lines

    monkeypatch.setattr(jsonl, "MAX_LINE", 300_000)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b'"' + b"x" * 400_000 + b'"\n' + b"[" * 200_000 + b"\n"
                     + b'{"b": 2}\n' + b'{"torn": ')
    lines = list(read_lines(path))
    assert [ln.value for ln in lines if not ln.problem] == [{"a": 1}, {"b": 2}]
    assert [(ln.number, "longer" in ln.problem) for ln in lines if ln.problem] == [(2, True), (3, False)]


# --- 2. run ids name a folder directly inside the runs folder -----------------------------------

def _everything_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("bad", [".", "..", "./", "../", "a/../..", "..*", ".*", "*", "?", "[0-9]*",
                                 "", " ", "/", "//", "~", "last/..", "runs/..", "..\\..",
                                 "20260101-000000-abcdef/..", "\x00", "..\n"])
def test_runs_delete_never_leaves_the_runs_folder(bad, capsys) -> None:
    store = TrajectoryStore()
    run_id = record_run(store)
    (data_dir() / "models" / "big-model").mkdir(parents=True)
    (data_dir() / "models" / "big-model" / "weights.bin").write_bytes(b"w" * 100)
    (data_dir() / "run.json").write_text(json.dumps(good_meta()))  # the data folder looks like a run
    before = _everything_under(data_dir())
    assert main(["runs", "delete", bad]) == 2
    assert "no run" in capsys.readouterr().err
    assert _everything_under(data_dir()) == before and store.load(run_id)


def test_absolute_paths_and_outside_folders_are_not_run_ids(tmp_path, capsys) -> None:
    outside = fake_run(tmp_path, "victim", good_meta())
    (outside / "precious.txt").write_text("keep me")
    record_run(TrajectoryStore())
    for bad in (str(outside), str(tmp_path), str(runs_dir()), os.path.relpath(outside, runs_dir())):
        assert main(["runs", "delete", bad]) == 2
        assert main(["runs", "show", bad]) == 2
    capsys.readouterr()
    assert (outside / "precious.txt").read_text() == "keep me"


def test_a_symlinked_run_is_never_followed(tmp_path, capsys) -> None:
    store = TrajectoryStore()
    real_id = record_run(store)
    outside = fake_run(tmp_path, "elsewhere", good_meta("outside"), [step_line(0)])
    (outside / "precious.txt").write_text("keep me")
    link = runs_dir() / "20990101-000000-linked"
    link.symlink_to(outside, target_is_directory=True)

    assert main(["runs", "list"]) == 0
    out, err = capsys.readouterr()
    assert real_id in out and "linked" not in out and "symbolic link" in err
    assert main(["runs", "show", link.name]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert main(["runs", "export", link.name]) == 2
    assert not (outside / "report.html").exists()
    capsys.readouterr()

    assert main(["runs", "delete", link.name]) == 0
    assert "link" in capsys.readouterr().out
    assert not os.path.lexists(link) and (outside / "precious.txt").read_text() == "keep me"
    assert store.load(real_id)  # the other run is untouched


def test_a_dangling_symlink_can_be_removed_and_does_not_break_listing(tmp_path, capsys) -> None:
    record_run(TrajectoryStore())
    link = runs_dir() / "20990101-000000-dangle"
    link.symlink_to(tmp_path / "gone")
    assert main(["runs", "list"]) == 0
    assert "dangle" in capsys.readouterr().err
    assert main(["runs", "delete", "20990101-000000-dangle"]) == 0
    assert not os.path.lexists(link)


# --- 3. malformed records: named, skipped, the rest still usable --------------------------------

BAD_META = {
    "started-text": {"task": "t", "started": "yesterday"},
    "list": [1, 2],
    "task-number": {"task": 5, "started": 1.0},
    "invalid": "{not json",
    "binary": b"\xff\xfe\x00\x89PNG\r\n",
    "nan": '{"task": "t", "started": NaN}',
    "huge-time": '{"task": "t", "started": 1e300}',
    "steps-text": {"task": "t", "started": 1.0, "steps": "many"},
    "pid-huge": {"task": "t", "started": 1.0, "status": "running", "pid": 10**30},
    "deep": "[" * 100_000,
    "null": "null",
    "empty": "",
}


def test_one_malformed_run_json_never_hides_the_other_runs(capsys) -> None:
    store = TrajectoryStore()
    good_id = record_run(store)
    for name, meta in BAD_META.items():
        fake_run(runs_dir(), f"20250101-000000-{name}", meta)
    os.mkfifo(fake_run(runs_dir(), "20250101-000000-fifo", good_meta()) / "run.json.fifo")
    fifo_run = runs_dir() / "20250102-000000-fifo"
    fifo_run.mkdir()
    os.mkfifo(fifo_run / "run.json")  # must not hang the listing

    assert main(["runs", "list"]) == 0
    out, err = capsys.readouterr()
    assert good_id in out and "20250101-000000-fifo" in out
    for name in ("list", "invalid", "binary", "deep", "null", "empty"):  # unusable: named, skipped
        assert f"20250101-000000-{name}/run.json" in err and f"000000-{name} " not in out
    for name in ("started-text", "task-number", "nan", "huge-time", "steps-text", "pid-huge"):
        assert f"20250101-000000-{name}" in out  # a bad field costs the field, not the run
        assert f"20250101-000000-{name}/run.json" in err
    assert "'started'" in err and "'task'" in err and "fifo/run.json" in err
    for info in store.list_runs():
        assert math.isfinite(info.started) and isinstance(info.task, str)
    # Each listed run can be shown, exported and deleted.
    for name in ("started-text", "task-number", "nan", "pid-huge"):
        assert main(["runs", "show", f"20250101-000000-{name}"]) == 0
        assert main(["runs", "export", f"20250101-000000-{name}"]) == 0
    assert main(["runs", "show", "20250101-000000-invalid"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["runs", "delete", "20250101-000000-invalid"]) == 0


BAD_STEP_LINES = ["{}", "[1, 2]", '"text"', "null", "5", '{"index": "one"}', '{"index": -1}',
                  '{"index": true}', "{torn in the middle", '{"index": 1e999}']


def test_bad_step_lines_are_skipped_with_a_note_naming_file_and_line(capsys, tmp_path) -> None:
    lines = [step_line(0), *BAD_STEP_LINES,
             step_line(1, action=5, timings={"generate": "slow", "x": float("nan")},
                       screenshot_point="here", monitor={"index": 1, "width": 0},
                       screenshot_size=[0, 0], model_size=[1, 2, 3], error=["e"], description=7),
             step_line(2, action={"action": "left_click", "coordinate": "x"}, timings=[1]),
             step_line(3)]
    fake_run(runs_dir(), "20260101-000000-steps", good_meta(), lines)
    assert main(["runs", "show", "20260101-000000-steps"]) == 0
    out, err = capsys.readouterr()
    assert "thought 0" in out and "thought 3" in out and "deskhand: index" not in err
    for n in range(2, 2 + len(BAD_STEP_LINES)):
        assert f"20260101-000000-steps/steps.jsonl, line {n}:" in err
    assert "'timings'" in err and "'action'" in err
    html = TrajectoryStore().export_html("20260101-000000-steps", tmp_path / "s.html")
    text = html.read_text(encoding="utf-8")
    assert text.count("<section>") == 4 and "line 2" in text


def test_store_api_reports_problems_instead_of_raising() -> None:
    fake_run(runs_dir(), "20260101-000000-aaaaaa", good_meta(), [step_line(0), "{}", step_line(1)])
    fake_run(runs_dir(), "20260101-000000-bbbbbb", [1, 2])
    listing = TrajectoryStore().scan()
    assert [r.id for r in listing.runs] == ["20260101-000000-aaaaaa"]
    assert any("bbbbbb/run.json" in p for p in listing.problems)
    record = TrajectoryStore().load("20260101-000000-aaaaaa")
    assert [s.index for s in record.steps] == [0, 1] and "line 2" in record.problems[0]


# --- 4. an unwritable or full data folder: a clear message, nothing lost ------------------------

def test_a_data_folder_under_a_file_is_a_clear_message(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("DESKHAND_DATA_DIR", str(blocker / "data"))
    with pytest.raises(TrajectoryError, match="not-a-folder"):
        TrajectoryStore().start("t")
    assert main(["runs", "list"]) == 0 and "no runs yet" in capsys.readouterr().out
    assert blocker.read_text() == "x"


def test_export_to_an_unwritable_place_is_a_clear_message(tmp_path, capsys) -> None:
    run_id = record_run(TrajectoryStore())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["runs", "export", run_id, "-o", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "could not save the HTML export" in err and "Traceback" not in err


def test_delete_and_list_errors_from_the_os_are_clear_messages(monkeypatch, capsys) -> None:
    run_id = record_run(TrajectoryStore())

    def refuse(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(shutil, "rmtree", refuse)
    assert main(["runs", "delete", run_id]) == 2
    assert "could not delete" in capsys.readouterr().err
    monkeypatch.setattr(Path, "iterdir", refuse)
    assert main(["runs", "list"]) == 2
    assert "cannot read the runs folder" in capsys.readouterr().err


def test_a_full_disk_mid_line_leaves_no_torn_line(monkeypatch) -> None:
    import agent.trajectory as trajectory

    store = TrajectoryStore()
    run_id = record_run(store)
    steps_file = store.resolve(run_id) / "steps.jsonl"
    before = steps_file.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 8:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    rec = trajectory.RunRecorder(steps_file.parent, {})
    step = _a_step()
    monkeypatch.setattr(trajectory.os, "write", half_then_full)
    with pytest.raises(TrajectoryError, match="disk is full"):
        rec.record(step)
    monkeypatch.undo()
    assert steps_file.read_bytes() == before
    rec.record(step)  # space freed: the next step appends cleanly
    assert len(store.load(run_id).steps) == 4 and not store.load(run_id).problems


def test_a_full_disk_keeps_run_json_whole_and_leaves_no_temp_file(monkeypatch) -> None:
    import agent.trajectory as trajectory

    store = TrajectoryStore()
    run_id = record_run(store)
    folder = store.resolve(run_id)
    before = (folder / "run.json").read_bytes()

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trajectory.os, "fsync", full)
    rec = trajectory.RunRecorder(folder, json.loads(before))
    with pytest.raises(TrajectoryError, match="disk is full"):
        rec.finish(_a_result())
    assert (folder / "run.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir() if "tmp" in p.name) == []


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk_keeps_every_complete_step(tmp_path) -> None:
    """A real full file system (a small tmpfs; needs mount rights, skipped without them)."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _tmpfs(disk, "48k"):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        store = TrajectoryStore(disk / "runs")
        rec = store.start("fill the disk", keep_screenshots=False)
        step, written = _a_step(thoughts="x" * 3000), 0
        with pytest.raises(TrajectoryError, match="disk is full"):
            for _ in range(100):
                rec.record(step)
                written += 1
        record = store.load(rec.run_id)
        assert len(record.steps) == written and not record.problems
        assert (rec.path / "steps.jsonl").read_bytes().endswith(b"\n")
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _a_step(thoughts: str = "t"):
    from agent.geometry import Monitor, ScreenMapping, Size
    from agent.loop import Step

    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(1288, 728))
    return Step(index=3, screenshot=None, mapping=mapping, model_text=thoughts, thoughts=thoughts,
                action=None, error=None, timings={})


def _a_result():
    from agent.loop import RunResult, RunStatus

    return RunResult(RunStatus.SUCCESS, "answer", "done", 3, 1.0)


# --- 5. export embeds screenshots from inside the run folder only -------------------------------

SECRET = (13, 37, 201)


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    Image.new("RGB", (64, 48), colour).save(path)


def _embedded_colours(html: str) -> list[tuple[int, int, int]]:
    out = []
    for data in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html):
        image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        out.append(image.getpixel((image.width // 2, 5)))
    return out


def _near(a, b) -> bool:
    return all(abs(x - y) < 12 for x, y in zip(a, b, strict=True))


def test_export_embeds_only_files_inside_the_run_folder(tmp_path, capsys) -> None:
    secret = tmp_path / "secret.png"
    _png(secret, SECRET)
    folder = fake_run(runs_dir(), "20260101-000000-shots", good_meta(), [])
    _png(folder / "step-000.png", (200, 200, 200))
    (folder / "step-009.png").symlink_to(secret)
    os.mkfifo(folder / "step-010.png")
    names = ["step-000.png", str(secret), "../../../secret.png",
             os.path.relpath(secret, folder), "step-009.png", "step-010.png", ".", "", "missing.png",
             "/dev/zero", "/proc/self/environ"]
    (folder / "steps.jsonl").write_text("".join(step_line(i, screenshot=n) + "\n"
                                                for i, n in enumerate(names)))
    out = tmp_path / "r.html"
    assert main(["runs", "export", "20260101-000000-shots", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    colours = _embedded_colours(html)
    assert len(colours) == 1 and _near(colours[0], (200, 200, 200))
    assert not any(_near(c, SECRET) for c in colours)
    assert html.count("omitted") >= 7
    steps = TrajectoryStore().load("20260101-000000-shots").steps
    assert [bool(s.screenshot) for s in steps] == [True] + [False] * (len(names) - 1)
    assert Path(steps[0].screenshot).is_relative_to(folder.resolve())


def test_export_never_writes_through_a_planted_link(tmp_path) -> None:
    store = TrajectoryStore()
    run_id = record_run(store)
    victim = tmp_path / "bashrc"
    victim.write_text("alias ls=ls\n")
    (store.resolve(run_id) / "report.html").symlink_to(victim)
    out = store.export_html(run_id)
    assert victim.read_text() == "alias ls=ls\n"
    assert not out.is_symlink() and out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_the_eval_report_reads_steps_only_inside_the_run_folder(tmp_path) -> None:
    from agent.eval.report import _task_steps

    run_dir = tmp_path / "evalrun"
    attempt = run_dir / "tasks" / "a"
    attempt.mkdir(parents=True)
    secret = tmp_path / "secret.png"
    _png(secret, SECRET)
    (attempt / "steps.jsonl").write_text(step_line(0, screenshot=str(secret)) + "\n"
                                         + step_line(1, screenshot="../../../secret.png") + "\n")
    html = _task_steps(run_dir, "tasks/a", 12)
    assert "step 0" in html and "data:image" not in html
    outside = tmp_path / "outside-attempt"
    outside.mkdir()
    (outside / "steps.jsonl").write_text(step_line(0, description="outside") + "\n")
    for bad in ("../outside-attempt", str(outside), ".", ""):
        assert "outside" not in _task_steps(run_dir, bad, 12)


def test_run_ids_from_the_store_are_plain_names() -> None:
    store = TrajectoryStore()
    for _ in range(3):
        run_id = record_run(store)
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id)
        assert store.resolve(run_id).parent == store.root


# --- 6. settings.json: a bad number costs that field, is named, never hangs or crashes ----------

BAD_SETTINGS = [
    ("confirm_timeout", "NaN"), ("confirm_timeout", "Infinity"), ("confirm_timeout", "-Infinity"),
    ("confirm_timeout", "-5"), ("confirm_timeout", '"60"'), ("confirm_timeout", "1e9"),
    ("confirm_timeout", "0"), ("settle_timeout", "NaN"), ("settle_timeout", "Infinity"),
    ("settle_timeout", "-1"), ("max_steps", "0"), ("max_steps", "1000000"), ("max_steps", "2.5"),
    ("max_steps", "true"), ("monitor", "-1"), ("policy", '"sometimes"'), ("provider", "null"),
    ("search_url", '"http://example.org/"'), ("data_dir", '"relative/runs"'),
    ("data_dir", '"~no-such-user-xyz/runs"'), ("data_dir", '"/tmp/a\\u0000b"'),
    ("model", '"a\\u0000b"'), ("keep_screenshots", '"yes"'), ("deny_titles", '"bank"'),
]


@pytest.mark.parametrize(("name", "raw"), BAD_SETTINGS, ids=[f"{n}={r}" for n, r in BAD_SETTINGS])
def test_a_bad_settings_value_keeps_that_fields_default_and_names_it(name, raw) -> None:
    from app.settings import Settings, load_settings, read_settings, settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"max_steps": 12, "policy": "always", "settle_timeout": 1.5, '
                    '"confirm_timeout": 90, "monitor": 2, "model": "fara", '
                    f'"{name}": {raw}}}', encoding="utf-8")
    settings, notes = read_settings()
    assert getattr(settings, name) == getattr(Settings(), name)
    assert len(notes) == 1 and name in notes[0] and str(path) in notes[0]
    for other, value in (("max_steps", 12), ("policy", "always"), ("settle_timeout", 1.5),
                         ("confirm_timeout", 90.0), ("monitor", 2), ("model", "fara")):
        if other != name:
            assert getattr(settings, other) == value
    for number in (settings.confirm_timeout, settings.settle_timeout):
        assert math.isfinite(number)
    assert 5 <= settings.confirm_timeout <= 3600 and 0 <= settings.settle_timeout <= 60
    assert load_settings() == settings
    settings.runs_dir()  # usable as a path: no NUL, no unknown ~user


def test_deny_titles_drop_empty_entries_that_would_match_every_window() -> None:
    from app.settings import read_settings, settings_path

    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps({"deny_titles": ["", "  ", 5, "bank"]}))
    settings, notes = read_settings()
    assert settings.deny_titles == ["bank"] and "deny_titles" in notes[0]


@pytest.mark.parametrize("content", [b"\xff\xfe binary", b"[1, 2]", b"[" * 100_000, b"{broken"])
def test_an_unreadable_settings_file_is_named_and_kept_aside(content) -> None:
    from app.settings import Settings, read_settings, save_settings, settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    settings, notes = read_settings()
    assert settings == Settings() and len(notes) == 1 and str(path) in notes[0]
    save_settings(settings)  # the next save replaces the file ...
    assert (path.parent / "settings.json.unreadable").read_bytes() == content  # ... not its content


def test_a_nan_confirm_timeout_never_reaches_the_confirmation_wait() -> None:
    """The hang: ConfirmBridge waited on a NaN deadline that never passed and no dialog showed."""
    import threading

    from agent.safety import Decision, StopFlag
    from app.session import ConfirmBridge
    from app.settings import load_settings, settings_path

    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text('{"confirm_timeout": NaN}')
    settings = load_settings()
    bridge = ConfirmBridge(lambda _r: None, StopFlag(), settings.confirm_timeout)
    bridge.timeout = min(bridge.timeout, 0.2) if math.isfinite(bridge.timeout) else bridge.timeout
    result = []
    worker = threading.Thread(target=lambda: result.append(bridge.ask(object())), daemon=True)
    worker.start()
    worker.join(5)
    assert result == [Decision.DENY]  # denied after the time-out instead of waiting forever


# --- attacks on the fixes themselves ------------------------------------------------------------

def test_a_run_folder_swapped_for_a_link_mid_delete_is_refused(tmp_path, monkeypatch) -> None:
    store = TrajectoryStore()
    run_id = record_run(store)
    folder = store.resolve(run_id)
    victim = fake_run(tmp_path, "victim", good_meta())
    real_is_symlink = Path.is_symlink

    def swap_then_look(self: Path) -> bool:
        if self == folder and not real_is_symlink(self):  # the race: after the check, before rmtree
            shutil.rmtree(folder)
            folder.symlink_to(victim, target_is_directory=True)
            return False
        return real_is_symlink(self)

    monkeypatch.setattr(TrajectoryStore, "_match", lambda _self, _id: folder)
    monkeypatch.setattr(Path, "is_symlink", swap_then_look)
    with pytest.raises(TrajectoryError, match="could not delete"):
        store.delete(run_id)
    assert (victim / "run.json").is_file()


def test_deleting_a_run_never_follows_links_inside_it(tmp_path) -> None:
    store = TrajectoryStore()
    run_id = record_run(store)
    folder = store.resolve(run_id)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    (folder / "step-009.png").symlink_to(outside / "precious.txt")
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    store.delete(run_id)
    assert not folder.exists() and (outside / "precious.txt").read_text() == "keep me"


def test_run_files_that_are_links_fifos_or_devices_are_not_read(tmp_path, capsys) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(good_meta("read through a link")))
    linked = runs_dir() / "20260101-000000-linkmeta"
    linked.mkdir(parents=True)
    (linked / "run.json").symlink_to(outside)
    steps_link = fake_run(runs_dir(), "20260101-000000-linksteps", good_meta())
    (tmp_path / "outside.jsonl").write_text(step_line(0, thoughts="outside thought") + "\n")
    (steps_link / "steps.jsonl").symlink_to(tmp_path / "outside.jsonl")
    fifo = fake_run(runs_dir(), "20260101-000000-fifosteps", good_meta())
    os.mkfifo(fifo / "steps.jsonl")
    dev = fake_run(runs_dir(), "20260101-000000-devsteps", good_meta())
    (dev / "steps.jsonl").symlink_to("/dev/zero")

    assert main(["runs", "list"]) == 0
    out, err = capsys.readouterr()
    assert "read through a link" not in out and "linkmeta/run.json" in err
    for name in ("linksteps", "fifosteps", "devsteps"):
        assert main(["runs", "show", f"20260101-000000-{name}"]) == 0
        out, err = capsys.readouterr()
        assert "outside thought" not in out and "steps.jsonl" in err


def test_a_settings_file_that_is_a_fifo_or_huge_does_not_hang_the_start() -> None:
    from app.settings import Settings, read_settings, settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    settings, notes = read_settings()  # would block forever in read_text
    assert settings == Settings() and "not a regular file" in notes[0]
    path.unlink()
    path.write_bytes(b'{"model": "' + b"x" * (2 << 20) + b'"}')
    settings, notes = read_settings()
    assert settings == Settings() and "larger than" in notes[0]


def test_jsonl_reader_takes_a_byte_order_mark_and_windows_line_ends(tmp_path) -> None:
    from agent.jsonl import read_lines

    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"b": "x\xe2\x80\xa8y"}\r\n')
    assert [ln.value for ln in read_lines(path)] == [{"a": 1}, {"b": "x\u2028y"}]


def test_export_to_a_file_the_user_names_writes_that_file(tmp_path) -> None:
    store = TrajectoryStore()
    run_id = record_run(store)
    chosen = tmp_path / "link-to-report.html"
    target = tmp_path / "real-report.html"
    chosen.symlink_to(target)  # the user's own link: followed, as a shell redirect would be
    assert store.export_html(run_id, chosen) == chosen
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>") and chosen.is_symlink()


JUNK = [None, True, -1, 0, 2**70, 1.5, float("nan"), float("inf"), "", "x", "<b>", "../x", [],
        [1], [1, 2], [0, 0], ["a", "b"], {}, {"a": 1}, {"width": 0}, "\u2028", "\x00"]


def fuzzed_run(seed: int = 10) -> Path:
    """A run whose 400 step lines hold random junk in every field a viewer reads."""
    import random

    rng = random.Random(seed)
    keys = ["index", "thoughts", "description", "error", "action", "timings", "screenshot",
            "screenshot_point", "screenshot_size", "model_size", "monitor", "note"]
    lines = []
    for i in range(400):
        step = {k: rng.choice(JUNK) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        if rng.random() < 0.7:
            step["index"] = i
        if rng.random() < 0.3:
            step["action"] = {"action": rng.choice(["left_click", "type", "key", "scroll", "x"]),
                              **{k: rng.choice(JUNK) for k in ("coordinate", "text", "keys",
                                                               "pixels", "url", "query")}}
        lines.append(json.dumps(step))
    return fake_run(runs_dir(), "20260101-000000-fuzzed", good_meta(), lines)


def test_fuzzed_step_lines_never_raise_in_any_viewer(capsys) -> None:
    from agent.eval.report import _task_steps

    folder = fuzzed_run()
    assert main(["runs", "show", folder.name]) == 0
    assert main(["runs", "export", folder.name]) == 0
    capsys.readouterr()
    record = TrajectoryStore().load(folder.name)
    written = [json.loads(line) for line in (folder / "steps.jsonl").read_text().split("\n") if line]
    numbered = [s for s in written if type(s.get("index")) is int and s["index"] >= 0]
    assert len(record.steps) == len(numbered) > 200 and "more problems" in record.problems[-1]
    _task_steps(runs_dir(), folder.name, 400)


def test_a_flood_of_bad_lines_is_summarised(capsys) -> None:
    fake_run(runs_dir(), "20260101-000000-flood", good_meta(), ["{}"] * 5000 + [step_line(0)])
    record = TrajectoryStore().load("20260101-000000-flood")
    assert len(record.steps) == 1 and len(record.problems) == 21
    assert "4980 more problems" in record.problems[-1]
